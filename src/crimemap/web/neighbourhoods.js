// Police neighbourhoods on the crime map (loaded after app.js, whose window.crimemap it uses).
//
// At street zooms (MIN_ZOOM and closer) the neighbourhoods in view are outlined, from
// /ogc/collections/policeuk-neighbourhoods/items?bbox=<view>; further out they are hidden (there are
// thousands). "Neighbourhood" beside "Force area" lists the picked force's neighbourhoods
// (/api/{force}/neighbourhoods); picking one fits the map to its /boundary. Clicking a neighbourhood
// (or picking one) opens its panel: its crimes in the month shown by category
// (/stats/crimes?neighbourhood=force/id&group=category), its trend over every stored month (group=month),
// its team (/people) and its priorities (/priorities).
"use strict";

(function () {
  const MIN_ZOOM = 12;
  const MAX_SHAPES = 1000;
  const crimemap = window.crimemap;
  const $ = (id) => document.getElementById(id);
  const select = $("neighbourhood");
  const label = $("neighbourhood-label");
  const panel = $("neighbourhood-panel");
  const nb = { layer: null, shown: 0, picked: null, categories: [], trend: [], people: [], priorities: [] };
  document.body.dataset.neighbourhoods = "off";
  if (!crimemap || !crimemap.map || !select) return;
  crimemap.neighbourhoods = nb;
  const map = crimemap.map;
  let seq = 0;

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && (body.message || body.description)) || `HTTP ${response.status}`);
    return body;
  }

  function path(force, id) {
    return `/api/${encodeURIComponent(force)}/${encodeURIComponent(id)}`;
  }

  function isPicked(p) {
    return nb.picked && nb.picked.force === p.force && nb.picked.id === p.neighbourhood;
  }

  // Below the crimes: drawn first on the shared canvas, so a crime's marker wins a click.
  nb.layer = L.geoJSON(null, {
    style: (f) => ({
      color: isPicked(f.properties) ? "#0f766e" : "#0d9488",
      weight: isPicked(f.properties) ? 3 : 1.2,
      opacity: 0.85,
      dashArray: isPicked(f.properties) ? null : "3 3",
      fillColor: "#14b8a6",
      fillOpacity: isPicked(f.properties) ? 0.08 : 0.02,
    }),
    onEachFeature: (f, layer) => {
      layer.bindTooltip(f.properties.name || f.properties.neighbourhood, { sticky: true, direction: "top" });
      layer.on("click", () => {
        if (!crimemap.state.drawing) show(f.properties.force, f.properties.neighbourhood);
      });
    },
  }).addTo(map);
  nb.outline = L.featureGroup().addTo(map);

  // -- the layer at street zooms ----------------------------------------------------------------

  // Whether neighbourhoods are loaded (/health lists their table): else nothing is asked for, and no 404 logged.
  const loaded = getJSON("/health")
    .then((health) => (health.tables || []).some((t) => t.id === "policeuk-neighbourhoods"))
    .catch(() => false);

  async function refreshLayer() {
    const mine = ++seq;
    const street = map.getZoom() >= MIN_ZOOM && (await loaded);
    if (mine !== seq) return;
    if (!street) {
      nb.layer.clearLayers();
      nb.shown = 0;
      document.body.dataset.neighbourhoods = "off";
      return;
    }
    const b = map.getBounds();
    const bbox = [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()), Math.min(180, b.getEast()),
      Math.min(90, b.getNorth())].map((v) => v.toFixed(5)).join(",");
    document.body.dataset.neighbourhoods = "loading";
    try {
      const body = await getJSON(`/ogc/collections/policeuk-neighbourhoods/items?bbox=${bbox}&limit=${MAX_SHAPES}`);
      if (mine !== seq) return;
      nb.layer.clearLayers();
      nb.layer.addData(body.features || []);
      nb.layer.bringToBack();
      if (crimemap.outlines) crimemap.outlines.bringToBack();
      nb.shown = (body.features || []).length;
      document.body.dataset.neighbourhoods = String(nb.shown);
    } catch (e) {
      if (mine !== seq) return;
      nb.layer.clearLayers();
      nb.shown = 0;
      document.body.dataset.neighbourhoods = "none"; // no neighbourhoods loaded (404) or no answer
    }
  }

  // -- the picker beside the force's ------------------------------------------------------------

  async function fillPicker(force) {
    select.replaceChildren(new Option("None", ""));
    label.hidden = true;
    if (!force || !(await loaded)) return;
    try {
      const listed = await getJSON(`/api/${encodeURIComponent(force)}/neighbourhoods`);
      if ($("force").value !== force) return;
      listed.sort((a, b) => String(a.name).localeCompare(String(b.name)));
      select.append(...listed.map((n) => new Option(n.name, n.id)));
    } catch (e) {
      // A force without neighbourhoods: the picker stays at None.
    }
    label.hidden = select.options.length < 2;
  }

  function pick(force, id) {
    if (!id) return close();
    show(force, id, true);
  }

  // -- the panel --------------------------------------------------------------------------------

  function filters(months) {
    const state = crimemap.state;
    const parts = months && state.month ? [`months=${state.month}`] : [];
    if (state.category && state.category !== "all-crime") parts.push(`category=${encodeURIComponent(state.category)}`);
    return parts.map((p) => `&${p}`).join("");
  }

  function plain(html) {
    return new DOMParser().parseFromString(String(html || ""), "text/html").body.textContent.trim();
  }

  function monthLabel(month) {
    return crimemap.monthLabel ? crimemap.monthLabel(month) : month;
  }

  // The neighbourhood's own outline, at every zoom; the map fitted to it when it was picked from the list.
  async function outline(force, id, fit) {
    const picked = nb.picked;
    try {
      const points = await getJSON(`${path(force, id)}/boundary`);
      if (nb.picked !== picked) return;
      const ring = points.map((p) => [Number(p.latitude), Number(p.longitude)]);
      nb.outline.clearLayers();
      if (ring.length < 3) return;
      const shape = L.polygon(ring, { color: "#0f766e", weight: 3, fill: false, interactive: false });
      nb.outline.addLayer(shape);
      if (!fit) return;
      // Clear of the counts panel, where it sits over the map's right side.
      const side = $("panel").offsetWidth && window.innerWidth > 720 ? $("panel").offsetWidth + 16 : 0;
      const fitted = () => map.fitBounds(shape.getBounds(), { maxZoom: 16, paddingBottomRight: [side, 0] });
      // A zoom still animating (the force's own fit) would end at its own target, undoing this one.
      if (map._animatingZoom) map.once("zoomend", fitted);
      else fitted();
    } catch (e) {
      // No boundary stored: the panel still shows what is known.
    }
  }

  async function show(force, id, fit) {
    const picked = (nb.picked = { force, id });
    nb.layer.setStyle((f) => nb.layer.options.style(f));
    outline(force, id, fit);
    panel.hidden = false;
    document.body.dataset.neighbourhood = "loading";
    $("neighbourhood-title").textContent = id;
    $("neighbourhood-total").textContent = "Counting…";
    const area = `neighbourhood=${encodeURIComponent(`${force}/${id}`)}`;
    const asked = [
      getJSON(path(force, id)),
      getJSON(`/stats/crimes?group=category&${area}${filters(true)}`),
      getJSON(`/stats/crimes?group=month&${area}${filters(false)}`),
      getJSON(`${path(force, id)}/people`),
      getJSON(`${path(force, id)}/priorities`),
    ];
    const [details, categories, trend, people, priorities] = await Promise.allSettled(asked);
    if (nb.picked !== picked) return;
    const value = (r) => (r.status === "fulfilled" ? r.value : null);
    const forceName = (crimemap.state.forces || {})[force] || force;
    $("neighbourhood-title").textContent = `${(value(details) || {}).name || id} · ${forceName}`;
    nb.categories = value(categories) || [];
    nb.trend = value(trend) || [];
    nb.people = value(people) || [];
    nb.priorities = value(priorities) || [];
    drawCounts(categories.status === "rejected" ? categories.reason.message : null);
    drawTrend();
    drawTeam();
    if (select.value !== id && Array.from(select.options).some((o) => o.value === id)) select.value = id;
    document.body.dataset.neighbourhood = categories.status === "fulfilled" ? "ready" : "error";
  }

  function drawCounts(error) {
    const total = nb.categories.reduce((s, r) => s + r.count, 0);
    $("neighbourhood-total").textContent = error ||
      `${total.toLocaleString("en-GB")} crime${total === 1 ? "" : "s"} in ${monthLabel(crimemap.state.month)}`;
    $("neighbourhood-categories").replaceChildren(...nb.categories.map((r) => {
      const li = element("li", "breakdown-item");
      const swatch = element("span", "swatch");
      swatch.style.background = crimemap.colour ? crimemap.colour(r.category) : "#9ca3af";
      li.append(swatch, element("span", "legend-name", crimemap.state.names[r.category] || r.category),
        element("span", "legend-count", r.count.toLocaleString("en-GB")));
      return li;
    }));
  }

  function drawTrend() {
    const chart = $("neighbourhood-trend");
    const most = Math.max(1, ...nb.trend.map((r) => r.count));
    chart.replaceChildren(...nb.trend.map((r) => {
      const bar = element("span", r.month === crimemap.state.month ? "bar current" : "bar");
      bar.style.height = `${Math.max(2, Math.round((100 * r.count) / most))}%`;
      bar.title = `${monthLabel(r.month)}: ${r.count.toLocaleString("en-GB")}`;
      return bar;
    }));
    chart.setAttribute("aria-label", nb.trend.map((r) => `${monthLabel(r.month)}: ${r.count}`).join("; ") ||
      "No crimes in any stored month");
    const first = nb.trend[0], last = nb.trend[nb.trend.length - 1];
    $("neighbourhood-trend-range").textContent = first ? `${monthLabel(first.month)} – ${monthLabel(last.month)}` : "";
  }

  function drawTeam() {
    const team = $("neighbourhood-team");
    team.replaceChildren(...nb.people.map((p) => {
      const li = element("li", "person", p.name || "");
      if (p.rank) li.append(element("span", "rank", ` · ${p.rank}`));
      return li;
    }));
    if (!nb.people.length) team.append(element("li", "empty", "No team published"));
    const list = $("neighbourhood-priorities");
    list.replaceChildren(...nb.priorities.map((p) => element("li", "priority", plain(p.issue))));
    if (!nb.priorities.length) list.append(element("li", "empty", "No priorities published"));
  }

  function close() {
    nb.picked = null;
    nb.outline.clearLayers();
    panel.hidden = true;
    select.value = "";
    nb.layer.setStyle((f) => nb.layer.options.style(f));
    document.body.dataset.neighbourhood = "none";
  }

  // -- wiring -----------------------------------------------------------------------------------

  label.hidden = true;
  $("force").addEventListener("change", () => fillPicker($("force").value));
  select.addEventListener("change", () => pick($("force").value, select.value));
  $("neighbourhood-close").addEventListener("click", close);
  $("selection-clear").addEventListener("click", () => fillPicker(""));
  $("dataset").addEventListener("change", () => {
    if ($("dataset").value === "policeuk-crimes") return;
    fillPicker("");
    close();
  });
  for (const id of ["month", "category"]) {
    $(id).addEventListener("change", () => { if (nb.picked) show(nb.picked.force, nb.picked.id); });
  }
  map.on("moveend", refreshLayer);
  refreshLayer();
})();

// The crime map: a client of crimemap's police.uk API (/api/...), drawn with Leaflet.
//
// On load it fills the month and category dropdowns from /api/crimes-street-dates and
// /api/crime-categories; after every map move (debounced) it asks
// /api/crimes-street/{category}?poly=<visible area>&date=<month> and draws the answer.
// The data picker switches to stop and search: the months are those whose
// crimes-street-dates entry lists forces with stops, the answer is /api/stops-street?poly=...,
// and stops are coloured by outcome (outcome_object.id).
// An area with more than 10,000 crimes (or stops) is answered 503: the page then asks to zoom in.
// The view is in the address (?lat=&lng=&zoom=&month=&category=&data=) so it can be shared.
// window.crimemap exposes the map and what it shows, for tests and the console.
"use strict";

(function () {
  const MAX_CRIMES = 10000;
  const MOVE_DEBOUNCE_MS = 300;
  const DEFAULT_VIEW = { lat: 51.5074, lng: -0.1278, zoom: 14 };
  const ALL_CRIME = "all-crime";
  const COLOURS = {
    "anti-social-behaviour": "#8e6bbf",
    "bicycle-theft": "#17a2b8",
    burglary: "#d62728",
    "criminal-damage-arson": "#ff7f0e",
    drugs: "#2ca02c",
    "other-theft": "#b5a800",
    "possession-of-weapons": "#7b1f1f",
    "public-order": "#e377c2",
    robbery: "#1f3a93",
    shoplifting: "#8c564b",
    "theft-from-the-person": "#3b8fd9",
    "vehicle-crime": "#4b5563",
    "violent-crime": "#b3136f",
    "other-crime": "#3fa88a",
    "public-disorder-weapons": "#a05d00",
  };
  const OUTCOME_COLOURS = {
    "bu-arrest": "#d62728",
    "bu-no-further-action": "#64748b",
    "bu-community-resolution": "#2ca02c",
    "bu-khat-or-cannabis-warning": "#b5a800",
    "bu-summons": "#ff7f0e",
    "bu-penalty-notice": "#8e6bbf",
    "bu-caution": "#17a2b8",
    none: "#cbd5e1",
  };
  const OTHER_COLOUR = "#9ca3af";
  const NOUNS = { crimes: ["crime", "crimes"], stops: ["stop", "stops"] };
  const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];

  const $ = (id) => document.getElementById(id);
  const dataSelect = $("data");
  const monthSelect = $("month");
  const categorySelect = $("category");
  const count = $("count");
  const message = $("message");
  const legend = $("legend");
  const config = readConfig();
  const params = new URLSearchParams(window.location.search);

  const state = {
    data: params.get("data") === "stops" ? "stops" : "crimes",
    dates: [], // the answer of /api/crimes-street-dates
    month: params.get("month"),
    category: params.get("category") || ALL_CRIME,
    names: {}, // category slug -> display name, for the current month
    seq: 0, // the latest crimes request; older answers are dropped
    controller: null,
    openCrime: null, // the id of the crime whose popup is open, reopened after a redraw
  };
  const crimemap = {
    state, map: null, layer: null, shown: 0, query: null,
    polygon: () => visiblePolygon(crimemap.map), // the poly parameter for the current view
  };
  window.crimemap = crimemap;

  // -- small helpers ------------------------------------------------------------------------

  function readConfig() {
    const tag = document.getElementById("crimemap-config");
    try {
      return tag ? JSON.parse(tag.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  function monthLabel(month) {
    const [year, m] = (month || "").split("-");
    const name = MONTH_NAMES[Number(m) - 1];
    return name ? `${name} ${year}` : month;
  }

  function number(n) {
    return n.toLocaleString("en-GB");
  }

  function colour(key) {
    const colours = state.data === "stops" ? OUTCOME_COLOURS : COLOURS;
    return colours[key] || OTHER_COLOUR;
  }

  // What a marker is coloured and counted by: a crime's category, a stop's outcome.
  function colourKey(item) {
    return state.data === "stops" ? item.outcome_object.id || "none" : item.category;
  }

  function noun(n) {
    return NOUNS[state.data][n === 1 ? 0 : 1];
  }

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function setStatus(status, query) {
    document.body.dataset.status = status;
    if (query !== undefined) document.body.dataset.query = query;
  }

  function showMessage(text, kind) {
    message.textContent = text;
    message.className = `message ${kind || "error"}`;
    message.hidden = false;
  }

  function hideMessage() {
    message.hidden = true;
    message.textContent = "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      let text = `The server answered ${status}`;
      if (body && typeof body.message === "string") {
        text = body.message + (body.hint ? ` (${body.hint})` : "");
      } else if (body && body.error && typeof body.error.message === "string") {
        text = body.error.message;
      }
      super(text);
      this.status = status;
    }
  }

  async function getJSON(url, signal) {
    const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // -- dropdowns ----------------------------------------------------------------------------

  function fill(select, options, wanted) {
    select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
    const values = options.map(([value]) => value);
    select.value = values.includes(wanted) ? wanted : values[0] || "";
    return select.value;
  }

  async function loadMonths() {
    state.dates = await getJSON("/api/crimes-street-dates");
    fillMonths();
  }

  function fillMonths() {
    const dates = state.data === "stops" ? state.dates.filter((d) => d["stop-and-search"].length) : state.dates;
    const months = dates.map((d) => d.date);
    state.month = fill(monthSelect, months.map((m) => [m, monthLabel(m)]), state.month) || null;
  }

  async function loadCategories() {
    $("category-label").hidden = state.data === "stops";
    if (state.data === "stops") {
      state.names = {};
      return;
    }
    if (!state.month) return;
    const categories = await getJSON(`/api/crime-categories?date=${encodeURIComponent(state.month)}`);
    state.names = Object.fromEntries(categories.map((c) => [c.url, c.name]));
    state.category = fill(categorySelect, categories.map((c) => [c.url, c.name]), state.category);
  }

  function updateLinks(query) {
    const download = $("download");
    if (state.month) {
      const where = encodeURIComponent(`month='${state.month}'`);
      download.href = `/download/policeuk-${state.data}.geojson?where=${where}`;
      download.title = `All ${NOUNS[state.data][1]} of ${monthLabel(state.month)} as one GeoJSON file`;
    }
    if (query) $("api-link").href = query;
  }

  // -- the map ------------------------------------------------------------------------------

  function initialView() {
    const lat = parseFloat(params.get("lat"));
    const lng = parseFloat(params.get("lng"));
    const zoom = parseInt(params.get("zoom"), 10);
    const ok = Math.abs(lat) <= 90 && Math.abs(lng) <= 180;
    return {
      lat: ok ? lat : DEFAULT_VIEW.lat,
      lng: ok ? lng : DEFAULT_VIEW.lng,
      zoom: zoom >= 1 && zoom <= 19 ? zoom : DEFAULT_VIEW.zoom,
    };
  }

  function createMap() {
    const view = initialView();
    const map = L.map("map", { preferCanvas: true, minZoom: 3, maxZoom: 19 });
    map.setView([view.lat, view.lng], view.zoom);
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.tileAttribution || "" }).addTo(map);
    } else {
      map.getContainer().classList.add("no-tiles");
    }
    map.attributionControl.addAttribution(
      'Crime data <a href="https://data.police.uk/about/">police.uk</a> (OGL v3), locations approximate');
    L.control.scale({ imperial: true, metric: true }).addTo(map);
    crimemap.map = map;
    crimemap.layer = createLayer().addTo(map);
    map.on("moveend", debounce(refresh, MOVE_DEBOUNCE_MS));
    return map;
  }

  function createLayer() {
    if (typeof L.markerClusterGroup !== "function") return L.featureGroup();
    return L.markerClusterGroup({
      chunkedLoading: true,
      maxClusterRadius: 45,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: true,
      iconCreateFunction(cluster) {
        const n = cluster.getChildCount();
        const size = n < 10 ? 30 : n < 100 ? 36 : n < 1000 ? 44 : 52;
        return L.divIcon({
          html: `<span class="cluster-ring" style="background:${pie(cluster.getAllChildMarkers())}">` +
            `<span class="cluster-count">${number(n)}</span></span>`,
          className: "cluster",
          iconSize: L.point(size, size),
        });
      },
    });
  }

  // A cluster's ring: a pie of its crimes' categories, largest first.
  function pie(markers) {
    const counts = {};
    for (const m of markers) counts[m.key] = (counts[m.key] || 0) + 1;
    const slices = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    let start = 0;
    const stops = slices.map(([slug, n]) => {
      const end = start + (360 * n) / markers.length;
      const stop = `${colour(slug)} ${start.toFixed(1)}deg ${end.toFixed(1)}deg`;
      start = end;
      return stop;
    });
    return `conic-gradient(${stops.join(", ")})`;
  }

  function visiblePolygon(map) {
    const b = map.getBounds();
    const clampLat = (v) => Math.max(-90, Math.min(90, v));
    const clampLng = (v) => Math.max(-180, Math.min(180, v));
    const n = clampLat(b.getNorth()), s = clampLat(b.getSouth());
    const e = clampLng(b.getEast()), w = clampLng(b.getWest());
    return [[n, w], [n, e], [s, e], [s, w]].map(([lat, lng]) => `${lat.toFixed(5)},${lng.toFixed(5)}`).join(":");
  }

  function rememberView(map) {
    const c = map.getCenter();
    const q = new URLSearchParams({
      lat: c.lat.toFixed(5), lng: c.lng.toFixed(5), zoom: String(map.getZoom()),
      month: state.month || "", category: state.category,
    });
    if (state.data === "stops") q.set("data", "stops");
    window.history.replaceState(null, "", `?${q}`);
  }

  async function refresh() {
    const map = crimemap.map;
    if (!map || !state.month) return;
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const controller = (state.controller = new AbortController());
    const where = `?poly=${visiblePolygon(map)}&date=${encodeURIComponent(state.month)}`;
    const query = state.data === "stops" ? `/api/stops-street${where}` :
      `/api/crimes-street/${encodeURIComponent(state.category)}${where}`;
    setStatus("loading", query);
    count.textContent = "Loading…";
    count.classList.add("busy");
    updateLinks(query);
    rememberView(map);
    try {
      const crimes = await getJSON(query, controller.signal);
      if (seq !== state.seq) return;
      draw(crimes);
      crimemap.query = query;
      setStatus("ready");
    } catch (err) {
      if (seq !== state.seq || err.name === "AbortError") return;
      draw([]);
      crimemap.query = query;
      if (err.status === 503) {
        count.textContent = `More than ${number(MAX_CRIMES)} ${noun(2)}`;
        showMessage(`Zoom in: more than ${number(MAX_CRIMES)} ${noun(2)} here`, "zoom");
        setStatus("too-many");
      } else {
        count.textContent = `No ${noun(2)} shown`;
        showMessage(err instanceof ApiError ? err.message : `Could not reach the server: ${err.message}`, "error");
        setStatus("error");
      }
    } finally {
      if (seq === state.seq) count.classList.remove("busy");
    }
  }

  function draw(crimes) {
    const layer = crimemap.layer;
    const reopen = state.openCrime;
    layer.clearLayers();
    const markers = crimes.map((item, i) => marker(item, i));
    if (typeof layer.addLayers === "function") layer.addLayers(markers);
    else markers.forEach((m) => layer.addLayer(m));
    // A popup's own auto-pan moves the map, which redraws it: keep that popup open.
    const again = reopen === null ? null : markers.find((m) => m.id === reopen);
    if (again && crimemap.map.hasLayer(again)) again.openPopup(); // on the map, not inside a cluster
    crimemap.shown = crimes.length;
    count.textContent = `${number(crimes.length)} ${noun(crimes.length)} shown`;
    drawLegend(crimes);
    if (crimes.length === 0) {
      showMessage(`No ${noun(2)} here in ${monthLabel(state.month)}: try another month, or move the map`, "hint");
    } else {
      hideMessage();
    }
  }

  function marker(item, i) {
    const lat = Number(item.location.latitude);
    const lng = Number(item.location.longitude);
    const key = colourKey(item);
    const m = L.circleMarker([lat, lng], {
      radius: 6, weight: 1.5, color: "#ffffff", fillColor: colour(key), fillOpacity: 0.9,
    });
    m.crime = item;
    m.key = key;
    // Stops have no id: the answer's order is stable, so a redraw of the same view finds the same one.
    m.id = state.data === "stops" ? `${item.datetime}|${item.location.street.id}|${i}` : item.id;
    m.bindPopup(() => (state.data === "stops" ? stopPopup(item) : popup(item)));
    m.on("popupopen", () => { state.openCrime = m.id; });
    m.on("popupclose", () => { if (state.openCrime === m.id) state.openCrime = null; });
    return m;
  }

  function yesNo(value) {
    return value === null || value === undefined ? "Not recorded" : value ? "Yes" : "No";
  }

  function stopPopup(stop) {
    const box = element("div", "popup");
    const title = element("div", "popup-title", stop.outcome || "No outcome recorded");
    title.style.setProperty("--swatch", colour(colourKey(stop)));
    box.append(title, element("div", "popup-street", stop.location.street.name || "Street not named"));
    const when = new Date(stop.datetime);
    const rows = [
      ["When", Number.isNaN(when.getTime()) ? stop.datetime :
        when.toLocaleString("en-GB", { timeZone: "Europe/London", dateStyle: "medium", timeStyle: "short" })],
      ["Type", stop.type],
      ["Gender", stop.gender],
      ["Age range", stop.age_range],
      ["Self-defined ethnicity", stop.self_defined_ethnicity],
      ["Officer-defined ethnicity", stop.officer_defined_ethnicity],
      ["Legislation", stop.legislation],
      ["Object of search", stop.object_of_search],
      ["Outcome linked to object", yesNo(stop.outcome_linked_to_object_of_search)],
      ["More than outer clothing removed", yesNo(stop.removal_of_more_than_outer_clothing)],
    ];
    if (stop.operation) rows.push(["Policing operation", stop.operation_name || "Yes"]);
    const table = element("dl", "popup-rows");
    for (const [name, value] of rows) table.append(element("dt", "", name), element("dd", "", value || "Not recorded"));
    box.append(table);
    return box;
  }

  function popup(crime) {
    const box = element("div", "popup");
    const title = element("div", "popup-title", state.names[crime.category] || crime.category);
    title.style.setProperty("--swatch", colour(crime.category));
    box.append(title, element("div", "popup-street", crime.location.street.name));
    const rows = [["Month", monthLabel(crime.month)]];
    const outcome = crime.outcome_status;
    rows.push(["Outcome", outcome ? `${outcome.category} (${monthLabel(outcome.date)})` : "No outcome recorded"]);
    if (crime.location_type === "BTP") {
      rows.push(["Recorded by", `British Transport Police${crime.location_subtype ? `, ${crime.location_subtype}` : ""}`]);
    }
    if (crime.context) rows.push(["Context", crime.context]);
    const table = element("dl", "popup-rows");
    for (const [name, value] of rows) table.append(element("dt", "", name), element("dd", "", value));
    box.append(table);
    return box;
  }

  function drawStopLegend(stops) {
    const counts = {};
    const names = {};
    for (const s of stops) {
      const key = colourKey(s);
      counts[key] = (counts[key] || 0) + 1;
      names[key] = s.outcome || "No outcome recorded";
    }
    const list = element("ul", "legend-list");
    for (const [key, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) {
      const item = element("li", "legend-item");
      const row = element("span", "legend-button");
      const swatch = element("span", "swatch");
      swatch.style.background = colour(key);
      row.append(swatch, element("span", "legend-name", names[key]), element("span", "legend-count", number(n)));
      item.append(row);
      list.append(item);
    }
    legend.replaceChildren(element("div", "legend-heading", `Stop and search · ${monthLabel(state.month)}`), list);
    legend.hidden = false;
  }

  function drawLegend(crimes) {
    if (state.data === "stops") {
      drawStopLegend(crimes);
      return;
    }
    const counts = {};
    for (const c of crimes) counts[c.category] = (counts[c.category] || 0) + 1;
    const slugs = Object.keys(state.names).filter((s) => s !== ALL_CRIME);
    for (const s of Object.keys(counts)) if (!slugs.includes(s)) slugs.push(s);
    const list = element("ul", "legend-list");
    for (const slug of slugs) {
      const n = counts[slug] || 0;
      const item = element("li", n ? "legend-item" : "legend-item empty");
      const button = element("button", "legend-button");
      button.type = "button";
      button.title = `Show only ${state.names[slug] || slug}`;
      const swatch = element("span", "swatch");
      swatch.style.background = colour(slug);
      button.append(swatch, element("span", "legend-name", state.names[slug] || slug),
        element("span", "legend-count", n ? number(n) : ""));
      button.addEventListener("click", () => chooseCategory(slug));
      item.append(button);
      list.append(item);
    }
    const heading = element("div", "legend-heading", `${state.names[state.category] || "Crimes"} · ${monthLabel(state.month)}`);
    legend.replaceChildren(heading, list);
    if (state.category !== ALL_CRIME) {
      const all = element("button", "legend-all", "Show all crime");
      all.type = "button";
      all.addEventListener("click", () => chooseCategory(ALL_CRIME));
      legend.append(all);
    }
    legend.hidden = false;
  }

  function chooseCategory(slug) {
    if (!Object.prototype.hasOwnProperty.call(state.names, slug)) return;
    state.category = categorySelect.value = slug;
    refresh();
  }

  // -- start --------------------------------------------------------------------------------

  dataSelect.addEventListener("change", async () => {
    state.data = dataSelect.value === "stops" ? "stops" : "crimes";
    fillMonths();
    try {
      await loadCategories();
    } catch (err) {
      showMessage(err.message, "error");
      setStatus("error");
      return;
    }
    updateLinks();
    if (!state.month) {
      draw([]);
      showNothingStored();
      return;
    }
    refresh();
  });
  monthSelect.addEventListener("change", async () => {
    state.month = monthSelect.value;
    try {
      await loadCategories();
    } catch (err) {
      showMessage(err.message, "error");
      setStatus("error");
      return;
    }
    refresh();
  });
  categorySelect.addEventListener("change", () => {
    state.category = categorySelect.value;
    refresh();
  });

  function showNothingStored() {
    count.textContent = `No ${noun(2)} stored`;
    showMessage(state.data === "stops" ? "No stop-and-search data is stored: load some with `crimemap load`." :
      "No crimes are stored yet: load some with `crimemap load`.", "hint");
    setStatus("empty");
  }

  async function start() {
    dataSelect.value = state.data;
    const leaflet = typeof window.L === "object" && typeof window.L.map === "function";
    if (leaflet) createMap();
    try {
      await loadMonths();
      await loadCategories();
    } catch (err) {
      showMessage(`Could not load the months and categories: ${err.message}`, "error");
      setStatus("error");
      return;
    }
    updateLinks();
    if (!leaflet) {
      count.textContent = "No map";
      showMessage("The map library Leaflet is not installed: run `npm ci` in the crimemap repository, " +
        "then reload this page.", "error");
      setStatus("no-leaflet");
      return;
    }
    if (!state.month) {
      showNothingStored();
      return;
    }
    refresh();
  }

  start();
})();

// The crime map: a client of crimemap's APIs (/api/..., /stats/..., /boundaries/..., /mapsengine/...),
// drawn with Leaflet.
//
// At every zoom something true is shown. After every map move (debounced) the page counts the crimes
// in view by category (/stats/crimes?group=category&poly=<view>): when there are few enough to draw
// one by one (MAX_MARKERS) it asks /api/crimes-street/{category}?poly=<view> and draws them as clusters;
// otherwise it asks /stats/crimes?group=cell&zoom=<zoom> and draws each grid cell's count. A trend
// panel charts crimes per month in view (/stats/crimes?group=month), and the legend is the category
// breakdown. Force outlines come from /boundaries/forces.geojson. A drawn polygon or a picked force
// gets its own counts and downloads; a clicked crime shows its outcome history.
// The data-set picker offers the crimes, stop and search (when stored) and every loaded table.
// Stops are drawn from /api/stops-street?poly=<view> for the months whose crimes-street-dates
// entry lists forces with stops, coloured by outcome (outcome_object.id); an area with more
// than 10,000 stops is answered 503, and the page then asks to zoom in. Any other table is drawn
// from its Maps Engine features in view (points and shapes).
// The view is in the address (?lat=&lng=&zoom=&month=&category=&data=) so it can be shared.
// window.crimemap exposes the map and what it shows, for tests and the console.
"use strict";

(function () {
  const MAX_MARKERS = 5000;
  // Counts are asked for one zoom out: cells of about 48 pixels, room for a circle and its number.
  const CELL_ZOOM_OFFSET = -1;
  const MOVE_DEBOUNCE_MS = 300;
  const DEFAULT_VIEW = { lat: 53.4, lng: -2.2, zoom: 6 };
  const ALL_CRIME = "all-crime";
  const CRIMES_TABLE = "policeuk-crimes";
  const STOPS_TABLE = "policeuk-stops";
  const MAX_STOPS = 10000; // the police.uk API's cap on one answer: more is a 503
  const MAX_TABLE_FEATURES = 5000;
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
  const NOUNS = { [CRIMES_TABLE]: ["crime", "crimes"], [STOPS_TABLE]: ["stop", "stops"] };
  const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  // Scotland, roughly (lng, lat): police.uk publishes only British Transport Police crimes there.
  const SCOTLAND = [[-3.05, 54.98], [-2.6, 55.1], [-2.2, 55.5], [-2.03, 55.81], [-1.6, 56.2], [-1.7, 57.7],
    [-1.2, 60.9], [-8.0, 58.6], [-7.8, 56.7], [-6.3, 55.5], [-5.2, 54.6], [-3.6, 54.8]];

  const $ = (id) => document.getElementById(id);
  const datasetSelect = $("dataset");
  const monthSelect = $("month");
  const categorySelect = $("category");
  const forceSelect = $("force");
  const count = $("count");
  const message = $("message");
  const legend = $("legend");
  const config = readConfig();
  const params = new URLSearchParams(window.location.search);

  const state = {
    dataset: datasetInAddress(params.get("data")), // a table id: the crimes, the stops or a loaded table
    dates: [], // the answer of /api/crimes-street-dates
    tables: [], // the tables /health lists
    month: params.get("month"),
    category: params.get("category") || ALL_CRIME,
    names: {}, // category slug -> display name, for the current month
    seq: 0, // the latest view request; older answers are dropped
    controller: null,
    openCrime: null, // the id of the crime whose popup is open, reopened after a redraw
    selection: null, // {kind: "polygon", ring: [[lat, lng], ...]} or {kind: "force", force, name}
    drawing: null, // the corners of a polygon being drawn
    forces: {}, // force id -> name, from the outlines
    outlineZoom: null,
  };
  const crimemap = {
    state, map: null, layer: null, cells: null, outlines: null, shown: 0, query: null, mode: null,
    cellRows: [], categoryRows: [], trend: [], selectionRows: [], tableFeatures: 0,
    polygon: () => visiblePolygon(crimemap.map), // the poly parameter for the current view
    inScotland,
    colour, monthLabel, // for neighbourhoods.js
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

  function shortMonth(month) {
    const [year, m] = (month || "").split("-");
    const name = MONTH_NAMES[Number(m) - 1];
    return name ? `${name.slice(0, 3)} ${year.slice(2)}` : month;
  }

  function number(n) {
    return n.toLocaleString("en-GB");
  }

  function colour(slug) {
    return COLOURS[slug] || OTHER_COLOUR;
  }

  function outcomeColour(id) {
    return OUTCOME_COLOURS[id] || OTHER_COLOUR;
  }

  function showingCrimes() {
    return state.dataset === CRIMES_TABLE;
  }

  function showingStops() {
    return state.dataset === STOPS_TABLE;
  }

  function showingTable() {
    return !showingCrimes() && !showingStops();
  }

  // ?data=stops, ?data=<table id>; the crimes without it.
  function datasetInAddress(value) {
    if (!value || value === "crimes") return CRIMES_TABLE;
    return value === "stops" ? STOPS_TABLE : value;
  }

  // What a marker is coloured and counted by: a crime's category, a stop's outcome.
  function colourKey(item) {
    return showingStops() ? item.outcome_object.id || "none" : item.category;
  }

  function keyColour(key) {
    return showingStops() ? outcomeColour(key) : colour(key);
  }

  function noun(n) {
    return (NOUNS[state.dataset] || NOUNS[CRIMES_TABLE])[n === 1 ? 0 : 1];
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

  function pointInRing(lng, lat, ring) {
    let inside = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i], [xj, yj] = ring[j];
      if ((yi > lat) !== (yj > lat) && lng < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  function inScotland(lat, lng) {
    return pointInRing(lng, lat, SCOTLAND);
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
  }

  // The months of the data set shown: for stops, those with stop-and-search data.
  function fillMonths() {
    const dates = showingStops() ? state.dates.filter((d) => (d["stop-and-search"] || []).length) : state.dates;
    const months = dates.map((d) => d.date);
    state.month = fill(monthSelect, months.map((m) => [m, monthLabel(m)]), state.month) || null;
  }

  async function loadCategories() {
    if (showingStops()) {
      state.names = {};
      return;
    }
    if (!state.month) return;
    const categories = await getJSON(`/api/crime-categories?date=${encodeURIComponent(state.month)}`);
    state.names = Object.fromEntries(categories.map((c) => [c.url, c.name]));
    state.category = fill(categorySelect, categories.map((c) => [c.url, c.name]), state.category);
  }

  // The data sets: the crimes, the stops when any are stored, then every other table /health lists.
  function fillDatasets() {
    const stops = state.dates.some((d) => (d["stop-and-search"] || []).length) ||
      state.tables.some((t) => t.id === STOPS_TABLE);
    const options = [[CRIMES_TABLE, "police.uk crimes"]];
    if (stops) options.push([STOPS_TABLE, "police.uk stop and search"]);
    for (const t of state.tables) {
      if (t.id !== CRIMES_TABLE && t.id !== STOPS_TABLE) options.push([t.id, `${t.name} (${number(t.features)})`]);
    }
    state.dataset = fill(datasetSelect, options, state.dataset);
  }

  async function loadDatasets() {
    try {
      const health = await getJSON("/health");
      state.tables = health.tables || [];
    } catch (e) {
      // The police.uk data alone: the picker keeps the crimes (and the stops).
    }
    fillDatasets();
  }

  // The controls of the data set shown: months for the police.uk data, categories, force areas,
  // drawing and the trend for the crimes; a loaded table has none of them.
  function showControls() {
    $("month-label").hidden = showingTable();
    for (const el of document.querySelectorAll(".crime-control")) el.hidden = !showingCrimes();
    $("panel").hidden = showingTable();
    $("trend").hidden = !showingCrimes();
    legend.setAttribute("aria-label", showingStops() ? "Outcomes in view" : "Categories in view");
  }

  function updateLinks(query) {
    const download = $("download");
    if (showingTable()) {
      download.href = `/download/${encodeURIComponent(state.dataset)}.geojson`;
      download.title = "The whole table as one GeoJSON file";
    } else if (state.month) {
      const where = encodeURIComponent(`month='${state.month}'`);
      download.href = `/download/${state.dataset}.geojson?where=${where}`;
      download.title = `All ${noun(2)} of ${monthLabel(state.month)} as one GeoJSON file`;
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
    const map = L.map("map", { preferCanvas: true, minZoom: 3, maxZoom: 19, keyboard: true });
    map.setView([view.lat, view.lng], view.zoom);
    addBasemap(map);
    map.attributionControl.addAttribution(
      'Crime data <a href="https://data.police.uk/about/">police.uk</a> (OGL v3), locations approximate');
    L.control.scale({ imperial: true, metric: true }).addTo(map);
    crimemap.map = map;
    crimemap.outlines = L.geoJSON(null, {
      style: (f) => ({
        color: f.properties.force === selectedForce() ? "#f97316" : "#334155",
        weight: f.properties.force === selectedForce() ? 3 : 1.2,
        opacity: 0.8, fill: false, interactive: false,
      }),
    }).addTo(map);
    crimemap.cells = L.featureGroup().addTo(map);
    crimemap.tableLayer = L.geoJSON(null, {
      pointToLayer: (f, at) => L.circleMarker(at, { radius: 5, weight: 1, color: "#fff", fillColor: "#2563eb", fillOpacity: 0.85 }),
      style: () => ({ color: "#2563eb", weight: 1.5, fillOpacity: 0.15 }),
      onEachFeature: (f, layer) => layer.bindPopup(() => featurePopup(f)),
    }).addTo(map);
    crimemap.layer = createLayer().addTo(map);
    crimemap.selectionLayer = L.featureGroup().addTo(map);
    map.on("moveend", debounce(refresh, MOVE_DEBOUNCE_MS));
    map.on("moveend", updateNotices);
    map.on("zoomend", () => loadOutlines());
    map.on("click", (e) => { if (state.drawing) addCorner(e.latlng); });
    return map;
  }

  function addBasemap(map) {
    const base = config.basemap || { kind: config.tileUrl ? "tiles" : "none", url: config.tileUrl,
      attribution: config.tileAttribution };
    const notice = $("basemap-notice");
    if (base.kind === "tiles" && base.url) {
      let loaded = 0, failed = 0;
      const tiles = L.tileLayer(base.url, { maxZoom: 19, attribution: base.attribution || "" }).addTo(map);
      tiles.on("tileload", () => { loaded += 1; notice.hidden = true; });
      tiles.on("tileerror", () => {
        failed += 1;
        if (!loaded && failed >= 2) {
          notice.textContent = "The base map could not be loaded: the force boundaries are shown alone.";
          notice.hidden = false;
          map.getContainer().classList.add("no-tiles");
        }
      });
      crimemap.basemap = "tiles";
    } else if (base.kind === "pmtiles" && typeof window.protomapsL === "object") {
      window.protomapsL.leafletLayer({ url: base.url, flavor: "light", lang: "en", attribution: base.attribution || "" })
        .addTo(map);
      crimemap.basemap = "pmtiles";
    } else {
      map.getContainer().classList.add("no-tiles");
      notice.textContent = base.kind === "pmtiles"
        ? "The PMTiles base map needs protomaps-leaflet (run npm ci): the force boundaries are shown alone."
        : "No base map is configured: the force boundaries are shown alone.";
      notice.hidden = false;
      crimemap.basemap = "none";
    }
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

  // A cluster's ring: a pie of its crimes' categories (its stops' outcomes), largest first.
  function pie(markers) {
    const counts = {};
    for (const m of markers) counts[m.key] = (counts[m.key] || 0) + 1;
    const slices = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    let start = 0;
    const stops = slices.map(([key, n]) => {
      const end = start + (360 * n) / markers.length;
      const stop = `${keyColour(key)} ${start.toFixed(1)}deg ${end.toFixed(1)}deg`;
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
    if (!showingCrimes()) q.set("data", showingStops() ? "stops" : state.dataset);
    window.history.replaceState(null, "", `?${q}`);
  }

  function filters() {
    const cat = state.category !== ALL_CRIME ? `&category=${encodeURIComponent(state.category)}` : "";
    return `months=${encodeURIComponent(state.month)}${cat}`;
  }

  async function refresh() {
    const map = crimemap.map;
    if (!map) return;
    if (showingTable()) return refreshTable();
    if (!state.month) return;
    if (showingStops()) return refreshStops();
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const controller = (state.controller = new AbortController());
    const poly = visiblePolygon(map);
    const view = `${filters()}&poly=${poly}`;
    setStatus("loading");
    count.textContent = "Loading…";
    count.classList.add("busy");
    rememberView(map);
    refreshTrend(poly, seq, controller.signal);
    let query = `/stats/crimes?group=category&${view}`;
    try {
      const categories = await getJSON(query, controller.signal);
      if (seq !== state.seq) return;
      const total = categories.reduce((sum, row) => sum + row.count, 0);
      crimemap.categoryRows = categories;
      drawLegend(categories);
      if (total <= MAX_MARKERS) {
        query = `/api/crimes-street/${encodeURIComponent(state.category)}` +
          `?poly=${poly}&date=${encodeURIComponent(state.month)}`;
        updateLinks(query);
        document.body.dataset.query = query;
        const crimes = await getJSON(query, controller.signal);
        if (seq !== state.seq) return;
        drawCells([]);
        drawCrimes(crimes);
        crimemap.mode = "crimes";
      } else {
        query = `/stats/crimes?group=cell&zoom=${Math.max(0, map.getZoom() + CELL_ZOOM_OFFSET)}&${view}`;
        updateLinks(query);
        document.body.dataset.query = query;
        const cells = await getJSON(query, controller.signal);
        if (seq !== state.seq) return;
        drawCrimes([]);
        drawCells(cells);
        crimemap.mode = "cells";
        count.textContent = `${number(total)} crimes in view · counts per area`;
      }
      document.body.dataset.mode = crimemap.mode;
      crimemap.query = query;
      setStatus("ready", query);
    } catch (err) {
      if (seq !== state.seq || err.name === "AbortError") return;
      drawCrimes([]);
      drawCells([]);
      crimemap.query = query;
      count.textContent = "No crimes shown";
      showMessage(err instanceof ApiError ? err.message : `Could not reach the server: ${err.message}`, "error");
      setStatus("error", query);
    } finally {
      if (seq === state.seq) count.classList.remove("busy");
    }
  }

  // Stops and searches in view, one marker each (no counts per area: /stats counts crimes only).
  async function refreshStops() {
    const map = crimemap.map;
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const controller = (state.controller = new AbortController());
    const query = `/api/stops-street?poly=${visiblePolygon(map)}&date=${encodeURIComponent(state.month)}`;
    setStatus("loading", query);
    count.textContent = "Loading…";
    count.classList.add("busy");
    rememberView(map);
    updateLinks(query);
    try {
      const stops = await getJSON(query, controller.signal);
      if (seq !== state.seq) return;
      crimemap.mode = document.body.dataset.mode = "stops";
      drawCells([]);
      drawCrimes(stops);
      crimemap.query = query;
      setStatus("ready", query);
    } catch (err) {
      if (seq !== state.seq || err.name === "AbortError") return;
      drawCells([]);
      drawCrimes([]);
      crimemap.query = query;
      if (err.status === 503) {
        count.textContent = `More than ${number(MAX_STOPS)} stops`;
        showMessage(`Zoom in: more than ${number(MAX_STOPS)} stops here`, "zoom");
        setStatus("too-many");
      } else {
        count.textContent = "No stops shown";
        showMessage(err instanceof ApiError ? err.message : `Could not reach the server: ${err.message}`, "error");
        setStatus("error");
      }
    } finally {
      if (seq === state.seq) count.classList.remove("busy");
    }
  }

  // Crimes or stops, one marker each; the legend of stops is drawn from them (the crimes' from /stats).
  function drawCrimes(items) {
    const layer = crimemap.layer;
    const reopen = state.openCrime;
    layer.clearLayers();
    const markers = items.map((item, i) => marker(item, i));
    if (typeof layer.addLayers === "function") layer.addLayers(markers);
    else markers.forEach((m) => layer.addLayer(m));
    // A popup's own auto-pan moves the map, which redraws it: keep that popup open.
    const again = reopen === null ? null : markers.find((m) => m.id === reopen);
    if (again && crimemap.map.hasLayer(again)) again.openPopup(); // on the map, not inside a cluster
    crimemap.shown = items.length;
    if (crimemap.mode !== "cells" || items.length) {
      count.textContent = `${number(items.length)} ${noun(items.length)} shown`;
    }
    if (showingStops()) drawStopLegend(items);
    if (items.length === 0 && !crimemap.cellRows.length) {
      showMessage(`No ${noun(2)} here in ${monthLabel(state.month)}: try another month, or move the map`, "hint");
    } else {
      hideMessage();
    }
  }

  // Each grid cell's count, in a circle sized by it; a cell is a keyboard-focusable marker that zooms in.
  function drawCells(cells) {
    const group = crimemap.cells;
    group.clearLayers();
    crimemap.cellRows = cells;
    if (!cells.length) return;
    hideMessage();
    const largest = Math.max(...cells.map((c) => c.count));
    for (const cell of cells) {
      const size = Math.round(24 + 16 * Math.sqrt(cell.count / largest));
      const label = cell.count >= 10000 ? `${Math.round(cell.count / 1000)}k`
        : cell.count >= 1000 ? `${(cell.count / 1000).toFixed(1)}k` : String(cell.count);
      const icon = L.divIcon({
        html: `<span class="cell-count">${label}</span>`,
        className: "cell",
        iconSize: L.point(size, size),
      });
      const [w, s, e, n] = cell.bounds;
      const m = L.marker([cell.lat, cell.lng], { icon, keyboard: true, title: `${number(cell.count)} crimes: zoom in`,
        alt: `${number(cell.count)} crimes` });
      m.cell = cell;
      const zoomIn = () => crimemap.map.fitBounds([[s, w], [n, e]]);
      m.on("click", zoomIn);
      m.on("add", () => m.getElement().addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          zoomIn();
        }
      }));
      group.addLayer(m);
    }
  }

  function marker(item, i) {
    const lat = Number(item.location.latitude);
    const lng = Number(item.location.longitude);
    const key = colourKey(item);
    const m = L.circleMarker([lat, lng], {
      radius: 6, weight: 1.5, color: "#ffffff", fillColor: keyColour(key), fillOpacity: 0.9,
    });
    m.crime = item;
    m.key = key;
    // Stops have no id: the answer's order is stable, so a redraw of the same view finds the same one.
    m.id = showingStops() ? `${item.datetime}|${item.location.street.id}|${i}` : item.id;
    m.bindPopup(() => (showingStops() ? stopPopup(item) : popup(item)));
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
    title.style.setProperty("--swatch", outcomeColour(colourKey(stop)));
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
    if (crime.persistent_id) box.append(outcomeHistory(crime.persistent_id));
    return box;
  }

  // The crime's whole outcome history, oldest first (/api/outcomes-for-crime).
  function outcomeHistory(pid) {
    const box = element("div", "history");
    box.append(element("div", "history-heading", "Outcome history"));
    const list = element("ol", "history-list");
    list.append(element("li", "history-loading", "Loading…"));
    box.append(list);
    getJSON(`/api/outcomes-for-crime/${encodeURIComponent(pid)}`).then((body) => {
      const items = (body.outcomes || []).map((o) => {
        const li = element("li", "history-item");
        li.append(element("span", "history-date", monthLabel(o.date)), document.createTextNode(" "),
          element("span", "history-outcome", o.category.name));
        return li;
      });
      list.replaceChildren(...(items.length ? items : [element("li", "", "No outcomes recorded yet")]));
      box.dataset.loaded = "true";
    }).catch((err) => {
      list.replaceChildren(element("li", "", err.status === 404 ? "No outcomes recorded yet" : err.message));
      box.dataset.loaded = "true";
    });
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
      swatch.style.background = outcomeColour(key);
      row.append(swatch, element("span", "legend-name", names[key]), element("span", "legend-count", number(n)));
      item.append(row);
      list.append(item);
    }
    legend.replaceChildren(element("div", "legend-heading", `Stop and search · ${monthLabel(state.month)}`), list);
    legend.hidden = false;
  }

  function drawLegend(rows) {
    const counts = Object.fromEntries(rows.map((r) => [r.category, r.count]));
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
    refreshSelection();
  }

  // -- the trend panel ----------------------------------------------------------------------

  async function refreshTrend(poly, seq, signal) {
    const cat = state.category !== ALL_CRIME ? `&category=${encodeURIComponent(state.category)}` : "";
    const query = `/stats/crimes?group=month&poly=${poly}${cat}`;
    document.body.dataset.trend = "loading";
    try {
      const rows = await getJSON(query, signal);
      if (seq !== state.seq) return;
      crimemap.trend = rows;
      crimemap.trendQuery = query;
      drawTrend(rows);
      document.body.dataset.trend = "ready";
    } catch (err) {
      if (err.name !== "AbortError" && seq === state.seq) document.body.dataset.trend = "error";
    }
  }

  function drawTrend(rows) {
    const what = state.names[state.category] || "Crimes";
    $("trend-heading").textContent = `${what} per month in view`;
    const body = $("trend-table").querySelector("tbody");
    body.replaceChildren(...rows.map((r) => {
      const tr = element("tr");
      tr.append(element("td", "", r.month), element("td", "", String(r.count)));
      return tr;
    }));
    if (typeof window.Chart !== "function") return;
    const data = {
      labels: rows.map((r) => shortMonth(r.month)),
      datasets: [{ label: what, data: rows.map((r) => r.count),
        backgroundColor: rows.map((r) => (r.month === state.month ? "#f97316" : "#38bdf8")) }],
    };
    if (crimemap.chart) {
      crimemap.chart.data = data;
      crimemap.chart.update("none");
      return;
    }
    crimemap.chart = new window.Chart($("trend-canvas"), {
      type: "bar",
      data,
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        onClick: (e, elements) => {
          if (elements.length) chooseMonth(crimemap.trend[elements[0].index].month);
        },
      },
    });
  }

  async function chooseMonth(month) {
    if (!Array.from(monthSelect.options).some((o) => o.value === month)) return;
    state.month = monthSelect.value = month;
    await loadCategories();
    refresh();
    refreshSelection();
  }

  // -- force outlines -----------------------------------------------------------------------

  function outlineZoom(zoom) {
    return zoom <= 6 ? 6 : zoom <= 9 ? 9 : 12;
  }

  async function loadOutlines() {
    const map = crimemap.map;
    if (!map) return;
    const z = outlineZoom(map.getZoom());
    if (state.outlineZoom === z) return;
    state.outlineZoom = z;
    try {
      const body = await getJSON(`/boundaries/forces.geojson?zoom=${z}`);
      if (state.outlineZoom !== z) return;
      crimemap.outlines.clearLayers();
      crimemap.outlines.addData(body);
      crimemap.outlines.bringToBack();
      const forces = body.features.map((f) => [f.properties.force, f.properties.name]);
      if (forces.length && !Object.keys(state.forces).length) {
        state.forces = Object.fromEntries(forces);
        forces.sort((a, b) => a[1].localeCompare(b[1]));
        forceSelect.replaceChildren(new Option("None", ""), ...forces.map(([id, name]) => new Option(name, id)));
      }
      document.body.dataset.outlines = String(body.features.length);
    } catch (e) {
      document.body.dataset.outlines = "error";
    }
  }

  function selectedForce() {
    return state.selection && state.selection.kind === "force" ? state.selection.force : null;
  }

  // -- notices ------------------------------------------------------------------------------

  function updateNotices() {
    const map = crimemap.map;
    if (!map) return;
    const c = map.getCenter();
    $("scotland").hidden = !inScotland(c.lat, c.lng);
  }

  // -- selections: a drawn polygon or a force area ------------------------------------------

  function startDrawing() {
    if (state.drawing) return cancelDrawing();
    clearSelection();
    state.drawing = [];
    crimemap.map.doubleClickZoom.disable();
    $("draw").setAttribute("aria-pressed", "true");
    $("drawbar").hidden = false;
    $("draw-finish").disabled = true;
    crimemap.map.getContainer().classList.add("drawing");
    crimemap.map.getContainer().focus();
  }

  function addCorner(latlng) {
    state.drawing.push([latlng.lat, latlng.lng]);
    crimemap.selectionLayer.clearLayers();
    const ring = state.drawing;
    if (ring.length >= 2) L.polygon(ring, { color: "#f97316", weight: 2, dashArray: "4 4", interactive: false }).addTo(crimemap.selectionLayer);
    for (const at of ring) L.circleMarker(at, { radius: 4, color: "#f97316", interactive: false }).addTo(crimemap.selectionLayer);
    $("draw-finish").disabled = ring.length < 3;
    $("draw-help").textContent = `${ring.length} corner${ring.length === 1 ? "" : "s"}: ` +
      (ring.length < 3 ? "add at least three." : "Finish to count the crimes inside.");
  }

  function endDrawing() {
    state.drawing = null;
    crimemap.map.doubleClickZoom.enable();
    $("draw").setAttribute("aria-pressed", "false");
    $("drawbar").hidden = true;
    crimemap.map.getContainer().classList.remove("drawing");
  }

  function cancelDrawing() {
    endDrawing();
    crimemap.selectionLayer.clearLayers();
  }

  function finishDrawing() {
    const ring = state.drawing;
    if (!ring || ring.length < 3) return;
    endDrawing();
    state.selection = { kind: "polygon", ring };
    crimemap.selectionLayer.clearLayers();
    L.polygon(ring, { color: "#f97316", weight: 2.5, fillOpacity: 0.08, interactive: false }).addTo(crimemap.selectionLayer);
    refreshSelection();
    $("draw").focus();
  }

  function clearSelection() {
    state.selection = null;
    crimemap.selectionLayer.clearLayers();
    crimemap.selectionRows = [];
    $("selection").hidden = true;
    forceSelect.value = "";
    crimemap.outlines.setStyle((f) => crimemap.outlines.options.style(f));
    document.body.dataset.selection = "none";
  }

  function chooseForce(force) {
    if (!force) return clearSelection();
    if (state.drawing) cancelDrawing();
    crimemap.selectionLayer.clearLayers();
    state.selection = { kind: "force", force, name: state.forces[force] || force };
    crimemap.outlines.setStyle((f) => crimemap.outlines.options.style(f));
    const layer = crimemap.outlines.getLayers().find((l) => l.feature.properties.force === force);
    if (layer) crimemap.map.fitBounds(layer.getBounds());
    refreshSelection();
  }

  function wktPolygon(ring) {
    const points = [...ring, ring[0]].map(([lat, lng]) => `${lng} ${lat}`);
    return `POLYGON((${points.join(", ")}))`;
  }

  function quoted(text) {
    return `'${String(text).replace(/'/g, "''")}'`;
  }

  async function refreshSelection() {
    const sel = state.selection;
    if (!sel || !state.month) return;
    let area, where, title;
    if (sel.kind === "polygon") {
      area = `poly=${sel.ring.map(([lat, lng]) => `${lat.toFixed(6)},${lng.toFixed(6)}`).join(":")}`;
      const ring = sel.ring.map(([lat, lng]) => [Number(lat.toFixed(6)), Number(lng.toFixed(6))]);
      where = `ST_INTERSECTS(geometry, ST_GEOMFROMTEXT('${wktPolygon(ring)}'))`;
      title = "Drawn area";
    } else {
      area = `force=${encodeURIComponent(sel.force)}`;
      where = `reported_by = ${quoted(sel.name)}`;
      title = sel.name;
    }
    where = `month = ${quoted(state.month)} AND ${where}`;
    if (state.category !== ALL_CRIME) where += ` AND category = ${quoted(state.category)}`;
    const query = `/stats/crimes?group=category&${filters()}&${area}`;
    document.body.dataset.selection = "loading";
    $("selection").hidden = false;
    $("selection-title").textContent = `${title} · ${monthLabel(state.month)}`;
    $("selection-total").textContent = "Counting…";
    try {
      const rows = await getJSON(query);
      if (state.selection !== sel) return;
      crimemap.selectionRows = rows;
      crimemap.selectionQuery = query;
      const total = rows.reduce((s, r) => s + r.count, 0);
      $("selection-total").textContent = `${number(total)} crime${total === 1 ? "" : "s"}`;
      $("selection-list").replaceChildren(...rows.map((r) => {
        const li = element("li", "breakdown-item");
        const swatch = element("span", "swatch");
        swatch.style.background = colour(r.category);
        li.append(swatch, element("span", "legend-name", state.names[r.category] || r.category),
          element("span", "legend-count", number(r.count)));
        return li;
      }));
      const encoded = encodeURIComponent(where);
      $("selection-geojson").href = `/download/policeuk-crimes.geojson?where=${encoded}`;
      $("selection-csv").href = `/download/policeuk-crimes.csv?where=${encoded}`;
      document.body.dataset.selection = "ready";
    } catch (err) {
      $("selection-total").textContent = err.message;
      document.body.dataset.selection = "error";
    }
  }

  // -- other data sets (any loaded table) ---------------------------------------------------

  function featurePopup(f) {
    const box = element("div", "popup");
    const table = element("dl", "popup-rows");
    for (const [k, v] of Object.entries(f.properties || {})) {
      table.append(element("dt", "", k), element("dd", "", v === null ? "" : String(v)));
    }
    box.append(table);
    return box;
  }

  async function chooseDataset(id) {
    state.dataset = id;
    state.seq += 1; // answers still on their way are for the data set shown before
    if (state.controller) state.controller.abort();
    crimemap.mode = null;
    if (state.drawing) cancelDrawing();
    if (!showingCrimes()) clearSelection();
    showControls();
    crimemap.tableLayer.clearLayers();
    drawCells([]);
    drawCrimes([]);
    legend.hidden = true;
    if (showingTable()) {
      // A table far from the view (the NYC tables from over the UK): fly to its extent, which shows it.
      const table = state.tables.find((t) => t.id === id);
      const extent = table && table.bbox ? L.latLngBounds([table.bbox[1], table.bbox[0]], [table.bbox[3], table.bbox[2]]) : null;
      if (extent && extent.isValid() && !crimemap.map.getBounds().intersects(extent)) {
        crimemap.map.flyToBounds(extent, { maxZoom: 14 }); // its moveend refreshes the table
      } else {
        refreshTable();
      }
      return;
    }
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
      showNothingStored();
      return;
    }
    refresh();
  }

  async function refreshTable() {
    const map = crimemap.map;
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const controller = (state.controller = new AbortController());
    const b = map.getBounds();
    const w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
    const s = Math.max(-90, b.getSouth()), n = Math.min(90, b.getNorth());
    const area = `POLYGON((${w} ${s}, ${e} ${s}, ${e} ${n}, ${w} ${n}, ${w} ${s}))`;
    const base = `/mapsengine/v1/tables/${encodeURIComponent(state.dataset)}/features` +
      `?intersects=${encodeURIComponent(area)}&maxResults=1000`;
    setStatus("loading", base);
    count.textContent = "Loading…";
    rememberView(map);
    updateLinks(base);
    try {
      const features = [];
      let token = null;
      do {
        const page = await getJSON(base + (token ? `&pageToken=${encodeURIComponent(token)}` : ""), controller.signal);
        if (seq !== state.seq) return;
        features.push(...page.features);
        token = page.nextPageToken;
      } while (token && features.length < MAX_TABLE_FEATURES);
      crimemap.tableLayer.clearLayers();
      crimemap.tableLayer.addData(features.filter((f) => f.geometry));
      crimemap.tableFeatures = features.length;
      crimemap.query = base;
      count.textContent = `${number(features.length)}${token ? "+" : ""} features shown`;
      if (features.length) hideMessage();
      else showMessage("No features of this table here: move the map", "hint");
      setStatus("ready", base);
    } catch (err) {
      if (seq !== state.seq || err.name === "AbortError") return;
      showMessage(err.message, "error");
      setStatus("error", base);
    }
  }

  // -- start --------------------------------------------------------------------------------

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
    refreshSelection();
  });
  categorySelect.addEventListener("change", () => {
    state.category = categorySelect.value;
    refresh();
    refreshSelection();
  });
  forceSelect.addEventListener("change", () => chooseForce(forceSelect.value));
  datasetSelect.addEventListener("change", () => chooseDataset(datasetSelect.value));
  $("draw").addEventListener("click", startDrawing);
  $("draw-finish").addEventListener("click", finishDrawing);
  $("draw-cancel").addEventListener("click", cancelDrawing);
  $("selection-clear").addEventListener("click", clearSelection);
  $("panel-toggle").addEventListener("click", () => {
    const open = $("panel-toggle").getAttribute("aria-expanded") !== "true";
    $("panel-toggle").setAttribute("aria-expanded", String(open));
    $("panel-body").hidden = !open;
  });
  document.addEventListener("keydown", (e) => {
    if (!state.drawing) return;
    if (e.key === "Escape") cancelDrawing();
    else if (e.key === "Enter" && e.target === crimemap.map.getContainer()) {
      e.preventDefault();
      addCorner(crimemap.map.getCenter());
    }
  });

  function showNothingStored() {
    count.textContent = `No ${noun(2)} stored`;
    showMessage(showingStops() ? "No stop-and-search data is stored: load some with `crimemap load`." :
      "No crimes are stored yet: load some with `crimemap load`.", "hint");
    setStatus("empty");
  }

  async function start() {
    const leaflet = typeof window.L === "object" && typeof window.L.map === "function";
    if (leaflet) {
      createMap();
      updateNotices();
      loadOutlines();
    }
    if (window.matchMedia && window.matchMedia("(max-width: 720px)").matches) {
      $("panel-toggle").setAttribute("aria-expanded", "false");
      $("panel-body").hidden = true;
    }
    // A table named in the address is known once /health has listed the tables; else they come later.
    const tables = showingTable() ? loadDatasets() : null;
    try {
      await loadMonths();
      if (tables) await tables;
      fillDatasets();
      fillMonths();
      await loadCategories();
    } catch (err) {
      showMessage(`Could not load the months and categories: ${err.message}`, "error");
      setStatus("error");
      return;
    }
    if (!tables) loadDatasets();
    showControls();
    updateLinks();
    if (!leaflet) {
      count.textContent = "No map";
      showMessage("The map library Leaflet is not installed: run `npm ci` in the crimemap repository, " +
        "then reload this page.", "error");
      setStatus("no-leaflet");
      return;
    }
    if (showingTable()) {
      refreshTable();
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

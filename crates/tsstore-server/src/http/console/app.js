// tsstore console. Plain JavaScript, no build step; one library, uPlot,
// vendored (vendor/, version and checksum in vendor/README.md) for the chart.
//
// Safety: everything a store holds is put on the page as text
// (textContent, never innerHTML); keys live in sessionStorage only and
// travel in headers (X-API-Key, X-Admin-Key) or, for the live
// WebSocket, in a `tsstore.key.<base64url>` subprotocol: never in a URL.
// The console uses the public REST and WebSocket API, nothing else.
"use strict";

const KEYS = "tsstore.keys";   // {store: api key}
const ADMIN = "tsstore.admin"; // the admin key
const TABLE_ROWS = 50;
const MAX_POINTS = 20000;      // what a chart holds, at most, live records included
const CHART_POINTS = 10000;    // what it asks the server for (a year of hours)
const SPANS = [["5 min", 300], ["1 hour", 3600], ["24 hours", 86400], ["7 days", 604800],
  ["30 days", 2592000], ["1 year", 31536000]];

// ---- small helpers ------------------------------------------------------

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = String(v);
    // Through the CSSOM: the CSP refuses style attributes.
    else if (k === "style") node.style.cssText = String(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function keys() {
  try { return JSON.parse(sessionStorage.getItem(KEYS) || "{}"); } catch { return {}; }
}
function setKey(store, key) {
  const all = keys();
  if (key) all[store] = key; else delete all[store];
  sessionStorage.setItem(KEYS, JSON.stringify(all));
}
function adminKey() { return sessionStorage.getItem(ADMIN) || ""; }

class ApiFail extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

/** One API call; the JSON answer, or an ApiFail with the server's message. */
async function api(method, path, opts = {}) {
  const headers = {};
  if (opts.key) headers["X-API-Key"] = opts.key;
  if (opts.admin) headers["X-Admin-Key"] = opts.admin;
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch {
    throw new ApiFail("The server cannot be reached. Is it running?", 0, "unreachable");
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  if (!res.ok) {
    throw new ApiFail((json && json.error) || `HTTP ${res.status}`, res.status, json && json.code);
  }
  return json;
}

const enc = (s) => encodeURIComponent(s);
const nsToDate = (ns) => new Date(Number(BigInt(ns) / 1000000n));
function fmtTime(ns) {
  if (ns === null || ns === undefined) return "–";
  return nsToDate(ns).toISOString().replace("T", " ").replace("Z", " UTC");
}
function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function fmtAge(ns) {
  if (ns === null || ns === undefined) return "never";
  const s = Math.max(0, (Date.now() - Number(BigInt(ns) / 1000000n)) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
function fmtSpan(fromNs, toNs) {
  if (fromNs === null || fromNs === undefined) return "empty";
  const s = Number((BigInt(toNs) - BigInt(fromNs)) / 1000000000n);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}
function fmtDays(s) {
  if (s >= 2 * 86400) return `${(s / 86400).toFixed(s >= 20 * 86400 ? 0 : 1)} days`;
  return `${(s / 3600).toFixed(1)} hours`;
}
function showData(d) {
  return typeof d === "string" ? d : JSON.stringify(d);
}

const main = () => document.getElementById("main");
function render(...nodes) { main().replaceChildren(...nodes); }
function errorBox(message) { return el("div", { class: "error", role: "alert" }, message); }

// Whatever a page leaves running (a live socket, timers) stops when the
// next page is shown.
let cleanup = [];
function leavePage() { for (const f of cleanup) f(); cleanup = []; }

// ---- pages --------------------------------------------------------------

function signInPage(message, store) {
  const storeInput = el("input", { name: "store", autocomplete: "off", value: store || "", placeholder: "greenhouse" });
  const keyInput = el("input", { name: "key", type: "password", autocomplete: "off", required: true });
  const out = el("div");
  if (message) out.append(errorBox(message));
  const form = el("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    const name = storeInput.value.trim();
    const key = keyInput.value;
    if (!name) {
      sessionStorage.setItem(ADMIN, key);
      location.hash = "#/";
      return route();
    }
    try {
      await api("GET", `/api/stores/${enc(name)}/stats`, { key });
      setKey(name, key);
      location.hash = `#/store/${enc(name)}`;
      route();
    } catch (err) {
      out.append(errorBox(err.status === 401
        ? `Wrong key for store '${name}', or no such store.`
        : err.message));
    }
  } },
    el("label", {}, "Store (empty to sign in with the admin key)", storeInput),
    el("label", {}, "API key", keyInput),
    el("button", { type: "submit" }, "Sign in"));
  render(el("h1", {}, "Sign in"), el("div", { class: "card" },
    el("p", { class: "muted" }, "Keys stay in this tab (sessionStorage) and are sent in headers only."),
    form, out));
}

async function storesPage() {
  const known = keys();
  const admin = adminKey();
  if (!admin && Object.keys(known).length === 0) return signInPage();
  const list = el("tbody");
  const box = el("div");
  render(
    el("div", { class: "row" }, el("h1", {}, "Stores"),
      el("button", { class: "plain", type: "button", onclick: () => { location.hash = "#/signin"; } }, "Add a key"),
      admin ? el("button", { type: "button", onclick: () => { location.hash = "#/create"; } }, "Create a store") : null),
    box,
    el("div", { class: "card" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Store", "Type", "Footprint", "Fill", "Retention", "Newest", "Last write"].map((h) => el("th", {}, h)))),
      list)));
  let stores;
  try {
    stores = (await api("GET", "/api/stores")).stores;
  } catch (err) {
    box.append(errorBox(err.message));
    return;
  }
  if (stores.length === 0) {
    box.append(el("p", { class: "muted" }, admin ? "No stores yet: create one." : "No stores on this server."));
  }
  for (const s of stores) {
    const key = known[s.name];
    const row = el("tr", {},
      el("td", {}, key ? el("a", { href: `#/store/${enc(s.name)}` }, s.name) : s.name),
      el("td", {}, s.data_type || "?"),
      el("td", {}, s.num_blocks ? fmtBytes(s.num_blocks * s.data_block_size) : "?"));
    list.append(row);
    if (!key) {
      row.append(el("td", { colspan: 4, class: "muted" },
        el("a", { href: `#/signin/${enc(s.name)}` }, "sign in to see it")));
      continue;
    }
    api("GET", `/api/stores/${enc(s.name)}/stats`, { key }).then((st) => {
      const fill = st.capacity_bytes ? st.bytes_used / st.capacity_bytes : 0;
      row.append(
        el("td", {}, el("div", { class: "fill", title: `${(fill * 100).toFixed(1)} %` },
          el("span", { style: `width:${Math.round(fill * 100)}%` })), `${(fill * 100).toFixed(1)} %`),
        el("td", {}, fmtSpan(st.oldest_timestamp, st.newest_timestamp)),
        el("td", {}, fmtTime(st.newest_timestamp)),
        el("td", {}, fmtAge(st.newest_timestamp)));
    }, (err) => row.append(el("td", { colspan: 4 }, errorBox(err.message))));
  }
}

function createPage() {
  const admin = adminKey();
  if (!admin) return signInPage("Creating a store needs the admin key.");
  const name = el("input", { name: "name", required: true, pattern: "[A-Za-z0-9_.-]+", autocomplete: "off" });
  const type = el("select", { name: "data_type" }, ["json", "schema", "text", "binary"].map((t) => el("option", { value: t }, t)));
  const encoding = el("select", { name: "encoding" },
    [["raw", "raw (readable by ts-store)"], ["compressed", "compressed (~10x the readings)"]]
      .map(([v, label]) => el("option", { value: v }, label)));
  const blocks = el("input", { name: "num_blocks", type: "number", min: 1, value: 1024 });
  const size = el("select", { name: "data_block_size" }, [4096, 8192, 16384, 65536].map((n) => el("option", { value: n }, fmtBytes(n))));
  const objSize = el("input", { name: "object_size", type: "number", min: 1, value: 60 });
  const every = el("input", { name: "every", value: "10s", autocomplete: "off" });
  // Rollups as the CLI writes them: WINDOW[:FUNCTIONS[:KEEP]], by commas.
  const rollups = el("input", { name: "rollups", autocomplete: "off", placeholder: "1m::7d, 1h::365d" });
  const estimate = el("p", { class: "muted", id: "estimate" });
  const reach = el("ul", { class: "muted", id: "reach" });
  const out = el("div");
  // The server's own arithmetic (`GET /api/calc`, as `tsstore calc`),
  // asked as the user types.
  let asked = 0;
  const update = () => {
    const mine = ++asked;
    const q = `num_blocks=${enc(blocks.value)}&data_block_size=${enc(size.value)}` +
      `&object_size=${enc(objSize.value)}&every=${enc(every.value.trim())}` +
      `&encoding=${enc(encoding.value)}` +
      (rollups.value.trim() ? `&rollups=${enc(rollups.value.replace(/\s+/g, ""))}` : "");
    setTimeout(async () => {
      if (mine !== asked) return;
      try {
        const c = await api("GET", `/api/calc?${q}`);
        if (mine !== asked) return;
        const days = c.history_seconds / 86400;
        const kept = days >= 2 ? `${days.toFixed(1)} days` : `${(c.history_seconds / 3600).toFixed(1)} hours`;
        estimate.className = "muted";
        estimate.textContent = `Footprint ${fmtBytes(c.total_bytes_with_rollups ?? c.total_bytes)} on disk, fixed. ` +
          `Holds ${c.max_objects.toLocaleString()} readings of ${c.object_size} bytes` +
          (c.objects_per_block ? ` (${c.objects_per_block} per block)` : "") +
          `: ${kept} of history at one every ${every.value.trim()}.`;
        // How far back each ring reaches: raw, then each rollup.
        reach.replaceChildren(el("li", {}, `raw readings: ${kept} back, ${fmtBytes(c.total_bytes)}`),
          ...(c.rollups || []).map((r) => el("li", {},
            `${r.window} windows: ${fmtDays(r.history_seconds)} back, ${fmtBytes(r.total_bytes)}`)));
      } catch (err) {
        if (mine !== asked) return;
        estimate.className = "error";
        estimate.textContent = err.message;
      }
    }, 150);
  };
  for (const input of [blocks, objSize, every, rollups]) input.addEventListener("input", update);
  size.addEventListener("change", update);
  encoding.addEventListener("change", update);
  update();
  const form = el("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const specs = rollups.value.split(",").map((r) => r.trim()).filter(Boolean).map((r) => {
        const [window, functions, keep] = r.split(":");
        return { window, functions: functions ? functions.split("+") : undefined, keep: keep || undefined };
      });
      const made = await api("POST", "/api/stores", { admin, body: {
        name: name.value.trim(), data_type: type.value, encoding: encoding.value,
        num_blocks: Number(blocks.value), data_block_size: Number(size.value),
        ...(specs.length ? { rollups: specs } : {}) } });
      setKey(made.name, made.api_key);
      out.append(el("div", { class: "notice", role: "status" },
        "Store created. Its API key, shown this once: ",
        el("code", { class: "apikey" }, made.api_key)),
      el("a", { href: `#/store/${enc(made.name)}` }, `Open ${made.name}`));
      form.reset();
      update();
    } catch (err) {
      out.append(errorBox(err.status === 401 ? "Wrong admin key." : err.message));
    }
  } },
    el("label", {}, "Name", name), el("label", {}, "Data type", type),
    el("label", {}, "Encoding", encoding),
    el("label", {}, "Blocks", blocks), el("label", {}, "Block size", size),
    el("label", {}, "Estimate for readings of (bytes)", objSize),
    el("label", {}, "arriving one every", every),
    el("label", {}, "Rollups: window, functions, how long to keep (1h:avg+max:365d)", rollups),
    estimate, reach, el("button", { type: "submit" }, "Create"));
  render(el("h1", {}, "Create a store"), el("div", { class: "card" }, form, out));
}

async function storePage(name) {
  const key = keys()[name];
  if (!key) return signInPage(null, name);
  const statsBox = el("dl", { class: "stats" });
  const tableBody = el("tbody");
  const filter = el("input", { type: "search", placeholder: "filter (substring)", "aria-label": "filter" });
  const live = el("span", { class: "badge", id: "live" }, "connecting");
  const spanSel = el("select", { "aria-label": "time span" }, SPANS.map(([label, s]) => el("option", { value: s }, label)));
  const resolution = el("span", { class: "badge", id: "resolution", title: "the ring that answered" }, "");
  const unzoom = el("button", { type: "button", class: "plain", hidden: true }, "Whole span");
  const chartNote = el("p", { class: "muted", id: "chart-note" });
  const chartHost = el("div", { id: "chart", "aria-label": "chart" });
  const errors = el("div");
  const side = el("div");
  render(
    el("div", { class: "row" }, el("h1", {}, name), live),
    errors,
    el("div", { class: "grid" },
      el("div", {},
        el("div", { class: "card" },
          el("div", { class: "row" }, el("h2", {}, "Chart"), spanSel, unzoom, resolution),
          chartHost, chartNote,
          el("p", { class: "muted hint" }, "Drag across the chart to zoom in; the finer data comes from the server.")),
        el("div", { class: "card" }, el("div", { class: "row" }, el("h2", {}, "Recent records"), filter),
          el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Data"))), tableBody))),
      el("div", {}, el("div", { class: "card" }, el("h2", {}, "Store"), statsBox), side)));

  // ---- the store panel, kept current by the live records too ----
  let stats = null;
  let rollups = [];
  const showStats = () => {
    const st = stats;
    if (!st) return;
    const fill = st.capacity_bytes ? (st.bytes_used / st.capacity_bytes) * 100 : 0;
    const rows = [
      ["Type", st.data_type], ["Records", st.object_count ?? "?"],
      ["Encoding", st.encoding === "compressed" && st.compression
        ? `compressed, ${st.compression.ratio.toFixed(1)}x` : st.encoding],
      ["Footprint", fmtBytes(st.capacity_bytes + rollups.reduce((n, r) => n + r.capacity_bytes, 0))],
      ["Fill", `${fill.toFixed(1)} %`],
      ["Oldest", fmtTime(st.oldest_timestamp)], ["Newest", fmtTime(st.newest_timestamp)],
      ["Reach", st.oldest_timestamp == null ? "empty" : `raw ${fmtSpan(st.oldest_timestamp, st.newest_timestamp)}`],
      ...rollups.map((r) => [`Rollup ${r.window}`, r.oldest_timestamp == null
        ? `${fmtBytes(r.capacity_bytes)}, no window yet`
        : `${fmtSpan(r.oldest_timestamp - r.window_ns, r.newest_timestamp)} back, ${fmtBytes(r.capacity_bytes)}${r.only_copy ? " (the only copy of its oldest windows)" : ""}`]),
      ["Blocks", `${st.active_blocks} of ${st.num_blocks} × ${fmtBytes(st.data_block_size)}`],
      ["Skipped (damaged)", st.corruption_skips],
    ];
    statsBox.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  };
  const loadStats = async () => {
    stats = await api("GET", `/api/stores/${enc(name)}/stats`, { key });
    rollups = stats.rollups || [];
    showStats();
    return stats;
  };
  /** A live record moves the panel's figures at once. */
  const statsSaw = (ts) => {
    if (!stats) return;
    if (typeof stats.object_count === "number") stats.object_count += 1;
    if (stats.oldest_timestamp == null) stats.oldest_timestamp = ts;
    stats.newest_timestamp = ts;
    showStats();
  };

  const addRow = (ts, data, atTop) => {
    const tr = el("tr", {}, el("td", {}, fmtTime(ts)), el("td", { class: "data" }, showData(data)));
    if (atTop) tableBody.prepend(tr); else tableBody.append(tr);
    while (tableBody.children.length > TABLE_ROWS) tableBody.lastElementChild.remove();
  };

  const loadTable = async () => {
    const q = filter.value ? `&filter=${enc(filter.value)}` : "";
    const got = await api("GET", `/api/stores/${enc(name)}/data/newest?limit=${TABLE_ROWS}${q}`, { key });
    tableBody.replaceChildren();
    for (const o of got.objects) addRow(o.timestamp, o.data, false);
    if (got.objects.length === 0) {
      tableBody.append(el("tr", {}, el("td", { colspan: 2, class: "muted" }, filter.value ? "No record matches." : "No records yet.")));
    }
  };

  // ---- the chart: the server picks the ring (resolution=auto) ----
  let zoomed = null; // [from ms, to ms] while zoomed in
  let asked = 0;     // answers to older questions are dropped
  const chart = new Chart(chartHost, (from, to) => { zoomed = [from, to]; loadChart(); });
  const loadChart = async () => {
    const ask = ++asked;
    const nowMs = Date.now();
    const [fromMs, toMs] = zoomed || [nowMs - Number(spanSel.value) * 1000, null];
    const ns = (ms) => (BigInt(Math.max(0, Math.floor(ms))) * 1000000n).toString();
    const end = toMs === null ? "" : `&end_time=${ns(toMs)}`;
    unzoom.hidden = !zoomed;
    try {
      const got = await api("GET", `/api/stores/${enc(name)}/data/range?start_time=${ns(fromMs)}${end}` +
        `&resolution=auto&max_points=${CHART_POINTS}&include_data=true`, { key });
      if (ask !== asked) return;
      resolution.textContent = got.resolution === "raw" ? "raw readings" : `${got.resolution} windows`;
      chart.show(got.objects, got.resolution, [fromMs, toMs ?? nowMs]);
      chartNote.textContent = chart.points() ? "" : "No numeric data in this span yet.";
    } catch (err) {
      if (ask !== asked) return;
      chart.show([], "raw", [fromMs, toMs ?? nowMs]);
      chartNote.textContent = err.code === "aggregation_unsupported" ? "No numeric fields to chart in this store." : err.message;
    }
  };
  let refreshDue = 0;
  /** A live record: onto the chart when it shows raw readings; a rollup's
   * chart asks again, at most every 5 s. */
  const chartSaw = (ts, data) => {
    if (zoomed) return;
    if (chart.resolution === "raw") {
      chart.add(ts, data);
      if (chart.points()) chartNote.textContent = "";
      return;
    }
    if (Date.now() < refreshDue) return;
    refreshDue = Date.now() + 5000;
    setTimeout(() => loadChart(), 5000);
  };

  const loadSide = async (st) => {
    side.replaceChildren();
    if (st.data_type === "schema") {
      const sch = await api("GET", `/api/stores/${enc(name)}/schema`, { key });
      side.append(el("div", { class: "card" }, el("h2", {}, `Schema (version ${sch.version})`),
        el("table", {}, el("tbody", {}, sch.fields.map((f) => el("tr", {}, el("td", {}, f.index), el("td", {}, f.name), el("td", {}, f.type)))))));
    }
    const [ws, mqtt, influx] = await Promise.all([
      api("GET", `/api/stores/${enc(name)}/ws/connections`, { key }),
      api("GET", `/api/stores/${enc(name)}/mqtt/connections`, { key }),
      api("GET", `/api/stores/${enc(name)}/influx/connections`, { key }),
    ]);
    const conns = [...ws.connections.map((c) => ["WebSocket", c.mode, c.url, c]),
      ...mqtt.connections.map((c) => ["MQTT", c.mode, `${c.broker_url} ${c.topic}`, c]),
      ...influx.connections.map((c) => ["Influx", "ship", c.url, c])];
    // What a connection has done: a shipper says how far behind it is.
    const counts = (kind, c) => kind === "Influx"
      ? `shipped ${c.points_sent} points, behind ${c.lag_records}${c.lag_at_least ? "+" : ""} records (${c.lag_seconds.toFixed(0)} s), skipped ${c.skipped}, errors ${c.errors}`
      : `sent ${c.messages_sent}, received ${c.messages_received}, errors ${c.errors}`;
    side.append(el("div", { class: "card" }, el("h2", {}, "Outbound connections"),
      conns.length === 0 ? el("p", { class: "muted" }, "None.") :
        el("table", {}, el("tbody", {}, conns.map(([kind, mode, where, c]) => el("tr", {},
          el("td", {}, `${kind} ${mode}`, el("div", { class: "muted" }, where)),
          el("td", {}, el("span", { class: `badge ${c.status}` }, c.status),
            el("div", { class: "muted" }, counts(kind, c)),
            c.last_error ? el("div", { class: "muted" }, c.last_error) : null)))))));
  };

  // The live feed: new records into the table, the chart and the store
  // panel; reconnects with a growing pause when the connection drops.
  let socket = null;
  let retry = 1000;
  let timer = null;
  let gone = false;
  let refilter = false; // closed on purpose, to reopen with a new filter
  let statsDue = 0;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const q = filter.value ? `&filter=${enc(filter.value)}` : "";
    const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(key)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    socket = new WebSocket(`${proto}://${location.host}/api/stores/${enc(name)}/ws/read?from=now${q}`,
      ["tsstore", `tsstore.key.${b64}`]);
    socket.onopen = () => { live.textContent = "live"; live.className = "badge connected"; retry = 1000; };
    socket.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg.type !== "data") return;
      const empty = tableBody.querySelector("td.muted");
      if (empty) tableBody.replaceChildren();
      addRow(msg.timestamp, msg.data, true);
      // A filtered feed leaves records out: the chart and the panel count
      // only what they are sent when nothing is filtered.
      if (!filter.value) { chartSaw(msg.timestamp, msg.data); statsSaw(msg.timestamp); }
      // The server's figures follow, at most once a second.
      if (Date.now() > statsDue) {
        statsDue = Date.now() + 1000;
        setTimeout(() => loadStats().catch(() => {}), 1000);
      }
    };
    socket.onclose = () => {
      if (gone) return;
      if (refilter) {
        refilter = false;
        live.textContent = "connecting";
        live.className = "badge";
        return connect();
      }
      live.textContent = `connection lost, retrying in ${Math.round(retry / 1000)} s`;
      live.className = "badge error";
      timer = setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  };
  cleanup.push(() => { gone = true; clearTimeout(timer); if (socket) socket.close(); chart.destroy(); });

  filter.addEventListener("change", () => {
    loadTable().catch((err) => errors.replaceChildren(errorBox(err.message)));
    if (socket && socket.readyState <= WebSocket.OPEN) {
      refilter = true;
      socket.close(); // onclose reconnects with the new filter
    }
  });
  spanSel.addEventListener("change", () => { zoomed = null; loadChart(); });
  unzoom.addEventListener("click", () => { zoomed = null; loadChart(); });

  try {
    const st = await loadStats();
    await loadTable();
    await loadChart();
    connect();
    loadSide(st).catch((err) => side.append(errorBox(err.message)));
    const t = setInterval(() => loadStats().catch(() => {}), 10000);
    cleanup.push(() => clearInterval(t));
  } catch (err) {
    if (err.status === 401) { setKey(name); return signInPage(`Wrong key for store '${name}', or no such store.`, name); }
    errors.append(errorBox(err.message));
  }
}

// ---- the chart: uPlot (vendor/uPlot.iife.min.js, pinned) -------------------
//
// Raw readings draw one line per numeric field; a rollup's windows draw
// each field's average (or its one function) with a band from its min to
// its max. Fields whose ranges do not overlap get their own scale, the
// first two an axis each (left, right). Times are in the browser's zone.

const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#6e7781"];
const FUNCTIONS = ["avg", "last", "first", "sum", "max", "min", "count"];

/** A window's field `temp_avg` as ["temp", "avg"]; a plain field as [name, null]. */
function splitField(k) {
  const m = /^(.*)_(avg|min|max|count|sum|first|last)$/.exec(k);
  return m ? [m[1], m[2]] : [k, null];
}

class Chart {
  constructor(host, onZoom) {
    this.host = host;
    this.onZoom = onZoom;
    this.plot = null;
    this.resolution = "raw";
    this.fields = [];   // [{name, line: key, min: key|null, max: key|null}]
    this.data = [[]];   // uPlot's columns: x (s), then the series
    this.pending = false;
  }
  points() { return this.data[0].length; }
  destroy() { if (this.plot) this.plot.destroy(); this.plot = null; }

  /** A fresh answer: `objects` from a list read at `resolution`. */
  show(objects, resolution, [fromMs, toMs]) {
    this.resolution = resolution;
    const rows = objects.filter((o) => o.timestamp && o.data && typeof o.data === "object")
      .map((o) => [Number(BigInt(o.timestamp) / 1000000n) / 1000, o.data]).sort((a, b) => a[0] - b[0]);
    // Which keys make which field's line and band.
    const byField = new Map(); // field -> Map(function or "" -> key)
    for (const [, d] of rows) for (const [k, v] of Object.entries(d)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      const [field, fn] = resolution === "raw" ? [k, null] : splitField(k);
      if (fn === "count") continue;
      if (!byField.has(field)) byField.set(field, new Map());
      byField.get(field).set(fn ?? "", k);
    }
    this.fields = [...byField.entries()].map(([field, keys]) => {
      const fn = FUNCTIONS.find((f) => keys.has(f)) ?? "";
      const both = keys.has("min") && keys.has("max");
      return { name: field, line: keys.get(fn), fn: fn || null,
        min: both ? keys.get("min") : null, max: both ? keys.get("max") : null };
    });
    const cols = [rows.map(([t]) => t)];
    for (const f of this.fields) {
      cols.push(rows.map(([, d]) => num(d[f.line])));
      if (f.min && f.max) { cols.push(rows.map(([, d]) => num(d[f.min]))); cols.push(rows.map(([, d]) => num(d[f.max]))); }
    }
    this.data = cols;
    this.span = [fromMs / 1000, toMs / 1000];
    this.build();
  }

  /** A live raw reading, appended. */
  add(ts, data) {
    if (!data || typeof data !== "object") return;
    const fresh = Object.entries(data).filter(([k, v]) => typeof v === "number" && Number.isFinite(v) && !this.fields.some((f) => f.line === k));
    if (fresh.length) {
      // A field not seen before: rebuild with it (no values before now).
      for (const [k] of fresh) { this.fields.push({ name: k, line: k, min: null, max: null }); this.data.push(this.data[0].map(() => null)); }
    }
    this.data[0].push(Number(BigInt(ts) / 1000000n) / 1000);
    this.fields.forEach((f, i) => this.data[i + 1].push(num(data[f.line])));
    if (this.data[0].length > MAX_POINTS) for (const col of this.data) col.shift();
    if (this.span) this.span[1] = Math.max(this.span[1], this.data[0][this.data[0].length - 1]);
    if (fresh.length || !this.plot) { this.build(); return; }
    this.drawSoon();
  }

  /** One redraw per frame, however fast records come. */
  drawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (this.plot) { this.plot.setData(this.data); this.mark(); }
    });
  }

  mark() {
    this.host.dataset.points = String(this.points());
    this.host.dataset.resolution = this.resolution;
  }

  /** Scales: fields whose ranges overlap share one. */
  scales() {
    const groups = []; // {lo, hi, scale}
    const scaleOf = [];
    let col = 1;
    for (const f of this.fields) {
      const vals = [];
      const cols = f.min && f.max ? 3 : 1;
      for (let c = col; c < col + cols; c++) for (const v of this.data[c]) if (v !== null) vals.push(v);
      col += cols;
      const lo = vals.length ? Math.min(...vals) : 0;
      const hi = vals.length ? Math.max(...vals) : 1;
      const pad = Math.max((hi - lo) * 0.1, Math.abs(hi) * 0.01, 1e-9);
      let g = groups.find((g) => lo - pad <= g.hi && hi + pad >= g.lo);
      if (!g) { g = { lo, hi, scale: `y${groups.length}` }; groups.push(g); }
      g.lo = Math.min(g.lo, lo); g.hi = Math.max(g.hi, hi);
      scaleOf.push(g.scale);
    }
    return { groups, scaleOf };
  }

  build() {
    this.destroy();
    const { groups, scaleOf } = this.scales();
    const few = this.points() < 60;
    const series = [{ label: "time" }];
    const bands = [];
    this.fields.forEach((f, i) => {
      const color = COLORS[i % COLORS.length];
      const label = f.fn ? `${f.name} (${f.fn})` : f.name;
      series.push({ label, scale: scaleOf[i], stroke: color, width: 1.5, spanGaps: false,
        points: { show: few, size: 5, fill: color } });
      if (f.min && f.max) {
        const at = series.length;
        series.push({ label: `${f.name} min`, scale: scaleOf[i], stroke: color + "55", width: 1, points: { show: false } });
        series.push({ label: `${f.name} max`, scale: scaleOf[i], stroke: color + "55", width: 1, points: { show: false } });
        bands.push({ series: [at + 1, at], fill: color + "22" });
      }
    });
    const scales = { x: { time: true } };
    if (this.span && !(this.points() > 1)) scales.x.range = () => this.span;
    const axes = [{ stroke: "#67717d", grid: { stroke: "#eef0f3" } }];
    groups.forEach((g, i) => {
      scales[g.scale] = { auto: true };
      // One point or one value: a range around it, so it is drawn.
      scales[g.scale].range = (u, lo, hi) => (lo === hi ? [lo - 1, hi + 1] : uPlot.rangeNum(lo, hi, 0.1, true));
      if (i < 2) axes.push({ scale: g.scale, side: i === 0 ? 3 : 1, stroke: "#67717d",
        grid: { show: i === 0, stroke: "#eef0f3" }, size: 56 });
    });
    const width = Math.max(280, this.host.clientWidth || 800);
    const opts = {
      width, height: 280, series, bands, scales, axes,
      legend: { live: true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width > 4) {
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            this.onZoom(from, to);
          }
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        }],
      },
    };
    this.plot = new uPlot(opts, this.data, this.host);
    this.mark();
  }
}

function num(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

// ---- routing ------------------------------------------------------------

function route() {
  leavePage();
  const signout = document.getElementById("signout");
  signout.hidden = !adminKey() && Object.keys(keys()).length === 0;
  document.getElementById("conn").textContent = adminKey() ? "admin" : "";
  const [, page, arg] = location.hash.split("/");
  const name = arg ? decodeURIComponent(arg) : "";
  if (page === "signin") return signInPage(null, name);
  if (page === "create") return createPage();
  if (page === "store" && name) return storePage(name);
  return storesPage();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", () => {
    sessionStorage.clear();
    location.hash = "#/";
    route();
  });
  route();
});

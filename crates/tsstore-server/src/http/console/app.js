// tsstore console. Plain JavaScript, no build step, no dependencies.
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
const MAX_POINTS = 2000;       // what the chart holds, at most
const SPANS = [["5 min", 300], ["1 hour", 3600], ["24 hours", 86400], ["7 days", 604800]];

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
  const estimate = el("p", { class: "muted", id: "estimate" });
  const out = el("div");
  // The server's own arithmetic (`GET /api/calc`, as `tsstore calc`),
  // asked as the user types.
  let asked = 0;
  const update = () => {
    const mine = ++asked;
    const q = `num_blocks=${enc(blocks.value)}&data_block_size=${enc(size.value)}` +
      `&object_size=${enc(objSize.value)}&every=${enc(every.value.trim())}` +
      `&encoding=${enc(encoding.value)}`;
    setTimeout(async () => {
      if (mine !== asked) return;
      try {
        const c = await api("GET", `/api/calc?${q}`);
        if (mine !== asked) return;
        const days = c.history_seconds / 86400;
        const kept = days >= 2 ? `${days.toFixed(1)} days` : `${(c.history_seconds / 3600).toFixed(1)} hours`;
        estimate.className = "muted";
        estimate.textContent = `Footprint ${fmtBytes(c.total_bytes)} on disk, fixed. ` +
          `Holds ${c.max_objects.toLocaleString()} readings of ${c.object_size} bytes` +
          (c.objects_per_block ? ` (${c.objects_per_block} per block)` : "") +
          `: ${kept} of history at one every ${every.value.trim()}.`;
      } catch (err) {
        if (mine !== asked) return;
        estimate.className = "error";
        estimate.textContent = err.message;
      }
    }, 150);
  };
  for (const input of [blocks, objSize, every]) input.addEventListener("input", update);
  size.addEventListener("change", update);
  encoding.addEventListener("change", update);
  update();
  const form = el("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const made = await api("POST", "/api/stores", { admin, body: {
        name: name.value.trim(), data_type: type.value, encoding: encoding.value,
        num_blocks: Number(blocks.value), data_block_size: Number(size.value) } });
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
    estimate, el("button", { type: "submit" }, "Create"));
  render(el("h1", {}, "Create a store"), el("div", { class: "card" }, form, out));
}

async function storePage(name) {
  const key = keys()[name];
  if (!key) return signInPage(null, name);
  const statsBox = el("dl", { class: "stats" });
  const tableBody = el("tbody");
  const filter = el("input", { type: "search", placeholder: "filter (substring)", "aria-label": "filter" });
  const live = el("span", { class: "badge", id: "live" }, "connecting");
  const chart = new Chart(el("canvas", { width: 800, height: 240, "aria-label": "chart" }));
  const spanSel = el("select", { "aria-label": "time span" }, SPANS.map(([label, s]) => el("option", { value: s }, label)));
  const errors = el("div");
  const side = el("div");
  render(
    el("div", { class: "row" }, el("h1", {}, name), live),
    errors,
    el("div", { class: "grid" },
      el("div", {},
        el("div", { class: "card" }, el("div", { class: "row" }, el("h2", {}, "Chart"), spanSel), chart.legend, chart.canvas),
        el("div", { class: "card" }, el("div", { class: "row" }, el("h2", {}, "Recent records"), filter),
          el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Time"), el("th", {}, "Data"))), tableBody))),
      el("div", {}, el("div", { class: "card" }, el("h2", {}, "Store"), statsBox), side)));

  const loadStats = async () => {
    const st = await api("GET", `/api/stores/${enc(name)}/stats`, { key });
    const fill = st.capacity_bytes ? (st.bytes_used / st.capacity_bytes) * 100 : 0;
    const rows = [
      ["Type", st.data_type], ["Records", st.object_count ?? "?"],
      ["Encoding", st.encoding === "compressed" && st.compression
        ? `compressed, ${st.compression.ratio.toFixed(1)}x` : st.encoding],
      ["Footprint", fmtBytes(st.capacity_bytes)], ["Fill", `${fill.toFixed(1)} %`],
      ["Oldest", fmtTime(st.oldest_timestamp)], ["Newest", fmtTime(st.newest_timestamp)],
      ["Retention", fmtSpan(st.oldest_timestamp, st.newest_timestamp)],
      ["Blocks", `${st.active_blocks} of ${st.num_blocks} × ${fmtBytes(st.data_block_size)}`],
      ["Skipped (damaged)", st.corruption_skips],
    ];
    statsBox.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    return st;
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

  const loadChart = async () => {
    const span = Number(spanSel.value);
    const windowS = Math.max(1, Math.ceil(span / MAX_POINTS));
    const since = `${span}s`;
    // Long spans come aggregated, so the browser gets at most MAX_POINTS.
    const agg = span > 300 ? `&agg_window=${windowS}s&agg_default=avg` : "";
    try {
      const got = await api("GET", `/api/stores/${enc(name)}/data/range?since=${since}&include_data=true&limit=${MAX_POINTS}${agg}`, { key });
      chart.reset(span);
      for (const o of got.objects) if (o.timestamp) chart.add(o.timestamp, o.data);
      chart.draw();
    } catch (err) {
      // Aggregation is for json and schema stores; others have no chart.
      chart.reset(span);
      chart.note = err.code === "aggregation_unsupported" ? "No numeric fields to chart in this store." : err.message;
      chart.draw();
    }
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

  // The live feed: new records into the table and the chart; reconnects
  // with a growing pause when the connection drops.
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
      chart.add(msg.timestamp, msg.data);
      chart.drawSoon();
      // The figures follow the records, at most once a second.
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
  cleanup.push(() => { gone = true; clearTimeout(timer); if (socket) socket.close(); });

  filter.addEventListener("change", () => {
    loadTable().catch((err) => errors.replaceChildren(errorBox(err.message)));
    if (socket && socket.readyState <= WebSocket.OPEN) {
      refilter = true;
      socket.close(); // onclose reconnects with the new filter
    }
  });
  spanSel.addEventListener("change", () => loadChart());

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

// ---- the chart: numeric fields over time, on a canvas ----------------------

class Chart {
  constructor(canvas) {
    this.canvas = canvas;
    this.legend = el("div", { class: "legend" });
    this.series = new Map(); // field -> [[t ms, value]]
    this.hidden = new Set();
    this.span = 300;
    this.note = "";
  }
  reset(span) { this.series.clear(); this.span = span; this.note = ""; }
  add(ts, data) {
    if (!data || typeof data !== "object") return;
    const t = Number(BigInt(ts) / 1000000n);
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      if (!this.series.has(k)) this.series.set(k, []);
      const pts = this.series.get(k);
      pts.push([t, v]);
      if (pts.length > MAX_POINTS) pts.shift();
    }
  }
  points() { let n = 0; for (const p of this.series.values()) n += p.length; return n; }
  /** One redraw per frame, however fast records come. */
  drawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }
  draw() {
    const c = this.canvas;
    const w = (c.width = c.clientWidth || 800);
    const h = (c.height = c.clientHeight || 240);
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, h);
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = "#67717d";
    const colors = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989"];
    const names = [...this.series.keys()];
    this.legend.replaceChildren(...names.map((n, i) => {
      const box = el("input", { type: "checkbox", checked: !this.hidden.has(n) });
      box.addEventListener("change", () => { if (box.checked) this.hidden.delete(n); else this.hidden.add(n); this.draw(); });
      return el("label", { style: `color:${colors[i % colors.length]}` }, box, n);
    }));
    const shown = names.filter((n) => !this.hidden.has(n));
    if (this.points() === 0 || shown.length === 0) {
      g.fillText(this.note || "No numeric data in this span yet.", 10, 20);
      return;
    }
    const now = Date.now();
    const t0 = now - this.span * 1000;
    let lo = Infinity; let hi = -Infinity;
    for (const n of shown) for (const [t, v] of this.series.get(n)) if (t >= t0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) { g.fillText("No numeric data in this span yet.", 10, 20); return; }
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = 28;
    const x = (t) => pad + ((t - t0) / (now - t0)) * (w - pad - 6);
    const y = (v) => h - 18 - ((v - lo) / (hi - lo)) * (h - 30);
    g.fillText(String(+hi.toPrecision(4)), 2, 12);
    g.fillText(String(+lo.toPrecision(4)), 2, h - 20);
    shown.forEach((n) => {
      g.strokeStyle = colors[names.indexOf(n) % colors.length];
      g.lineWidth = 1.5;
      g.beginPath();
      let first = true;
      for (const [t, v] of this.series.get(n)) {
        if (t < t0) continue;
        if (first) { g.moveTo(x(t), y(v)); first = false; } else g.lineTo(x(t), y(v));
      }
      g.stroke();
    });
    this.canvas.dataset.points = String(this.points());
  }
}

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

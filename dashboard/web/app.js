// moebius-js dashboard.
//
// One page, no framework: it polls /dashboard/api/state once a second and
// redraws each panel from the answer. The sections below, in order:
//   helpers · polling · panels (header, traffic, commands, workers, cluster,
//   counters, errors, reloads) · charts · client table · console.
//
// Every text that comes from the server goes into the page as textContent
// (never innerHTML): client ids, error messages and stacks come from code
// we do not trust.
"use strict";

// ---- Helpers -------------------------------------------------------------

const $ = (id) => document.getElementById(id);

// el("td", {className: "n", title: "…"}, "text", child…) makes an element;
// strings become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children.map((c) => (c == null ? "" : typeof c === "object" ? c : String(c))));
  return e;
}

const DASH = "–";
const fmtInt = (n) => (n == null ? DASH : String(Math.round(n)));
const fmtMs = (ms) => (ms == null ? DASH : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0));
const fmtRate = (r) => (r == null ? DASH : r.toFixed(1));
const fmtBool = (b) => (b === true ? "yes" : b === false ? "no" : String(b ?? DASH));

function fmtBytes(n) {
  if (n == null) return DASH;
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}

// fmtTime gives the local time of day of an RFC 3339 time.
function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso ?? "") : d.toLocaleTimeString([], { hour12: false });
}

// fmtAge says how long ago `iso` was, as of the server's clock `now`.
function fmtAge(iso, now) {
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  if (isNaN(s)) return DASH;
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}

// unchanged(key, data) is true when data is the same as the last time it
// was given under that key: a list that did not change is not rebuilt, so
// a selection in it (say, a stack being copied) survives the next poll.
const lastSeen = new Map();
function unchanged(key, data) {
  const json = JSON.stringify(data);
  if (lastSeen.get(key) === json) return true;
  lastSeen.set(key, json);
  return false;
}

// ---- Polling ---------------------------------------------------------------
// One request at a time: the next is scheduled a second after the answer
// (or the failure), and none while the tab is hidden.

const POLL_MS = 1000;
let pollTimer = null;   // the scheduled poll, if any
let polling = false;    // a request is on its way
let pollAgain = false;  // the view changed during a request: poll again at once

function setStatus(text, cls) {
  const s = $("status-line");
  s.textContent = text;
  s.className = cls;
}

async function poll() {
  pollTimer = null;
  if (document.hidden) return;
  polling = true;
  let state = null;
  try {
    const res = await fetch("/dashboard/api/state?" + clientsQuery(), { cache: "no-store" });
    if (res.status === 503) state = { starting: true }; // handlers.js is still loading
    else if (res.ok) state = await res.json();
    else throw new Error("HTTP " + res.status);
  } catch (err) {
    setStatus("disconnected", "down");
  }
  polling = false;
  schedule(pollAgain ? 0 : POLL_MS);
  pollAgain = false;
  // Outside the try: a mistake in rendering shows in the console, not as "disconnected".
  if (state?.starting === true) {
    setStatus("starting", "starting");
  } else if (state) {
    render(state);
    setStatus("live", "live");
  }
}

function schedule(ms) {
  if (pollTimer !== null || polling || document.hidden) return;
  pollTimer = setTimeout(poll, ms);
}

// pollNow asks for fresh state at once (after a click on the client table).
function pollNow() {
  if (polling) { pollAgain = true; return; }
  clearTimeout(pollTimer);
  pollTimer = null;
  schedule(0);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    clearTimeout(pollTimer);
    pollTimer = null;
  } else {
    schedule(0);
  }
});

// ---- Rendering each panel ----------------------------------------------------

function render(s) {
  renderHeader(s);
  renderTraffic(s);
  renderCommands(s.commands || []);
  renderWorkers(s.workers || []);
  renderCluster(s.cluster, s.now);
  renderClients(s.clients, s.now);
  renderCounters(s.counters || []);
  renderErrors(s.errors || []);
  renderReloads(s.reloads || []);
  showConsole(s.console === true);
}

function renderHeader(s) {
  $("version").textContent = s.version ?? "";
  $("instance").textContent = s.instance ?? "";
  $("uptime").textContent = s.uptime ?? "";
  $("generation").textContent = s.generation ?? "";
  $("files").textContent = (s.files || []).join(" ");
  $("files").title = (s.files || []).join("\n");
  $("not-ready").hidden = s.ready !== false;
}

function renderTraffic(s) {
  const t = s.totals || {};
  $("total-requests").textContent = fmtInt(t.requests);
  $("total-errors").textContent = fmtInt(t.errors);
  $("clients-count").textContent = fmtInt(t.clients);
  $("messages").textContent = `messages in ${fmtInt(t.messagesIn)} · out ${fmtInt(t.messagesOut)}`;

  const r = s.rate || { count: [], p50: [], p99: [] };
  const count = r.count || [], p50 = r.p50 || [], p99 = r.p99 || [];
  // Requests per second: the mean over the last 10 seconds.
  const last10 = count.slice(-10);
  $("rps").textContent = last10.length ? fmtRate(last10.reduce((a, b) => a + b, 0) / last10.length) : DASH;
  // Latency over the last 60 s, of all its requests together (the server's).
  $("p50").textContent = fmtMs(r.minuteP50);
  $("p99").textContent = fmtMs(r.minuteP99);

  drawChart($("rate-chart"), [{ values: count, cls: "count", area: true }], { unit: "/s" });
  drawChart($("latency-chart"), [{ values: p50, cls: "p50" }, { values: p99, cls: "p99" }], { unit: " ms" });
}

// fillTable replaces the rows of a table's body: rows is a list of
// [attributes, cells], each cell a string or {text, className, title}.
function fillTable(table, rows, columns) {
  const body = table.tBodies[0];
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { className: "empty", colSpan: columns }, "none")));
    return;
  }
  body.replaceChildren(...rows.map(([data, cells]) => {
    const tr = el("tr");
    Object.assign(tr.dataset, data);
    tr.append(...cells.map((c) => (typeof c === "object" && c !== null
      ? el("td", { className: c.className || "", title: c.title || "" }, c.text)
      : el("td", {}, c))));
    return tr;
  }));
}

const num = (v) => ({ text: v == null ? DASH : String(v), className: "n" });

function renderCommands(commands) {
  if (unchanged("commands", commands)) return;
  fillTable($("commands-table"), commands.map((c) => [{ command: c.command }, [
    c.command, c.strategy ?? "",
    num(c.running), num(c.queued), num(c.count),
    { text: fmtRate(c.rate), className: "n" },
    { text: fmtMs(c.p50), className: "n" }, { text: fmtMs(c.p99), className: "n" },
  ]]), 8);
}

function renderWorkers(workers) {
  if (unchanged("workers", workers)) return;
  fillTable($("workers-table"), workers.map((w) => [{ worker: String(w.index) }, [
    num(w.index),
    w.answered ? "yes" : { text: "no answer", className: "no", title: "busy in a long step" },
    num(w.clients), num(w.busy), num(w.spawned), fmtBool(w.background), num(w.steps), num(w.requests),
  ]]), 8);
}

// The cluster link (cluster.Status): its fields as names and values (a map
// such as messages in/out by kind on one line), and its instances one a line.
function renderCluster(cluster, now) {
  $("cluster").hidden = cluster == null;
  if (cluster == null || unchanged("cluster", cluster)) return;
  const fields = [];
  for (const [k, v] of Object.entries(cluster)) {
    if (k === "instances") continue;
    const text = v !== null && typeof v === "object"
      ? Object.entries(v).map(([kind, n]) => `${kind} ${n}`).join(", ") || DASH
      : fmtBool(v);
    fields.push(el("div", {}, el("dt", {}, k), el("dd", { className: k === "state" ? "state-" + v : "" }, text)));
  }
  const instances = (Array.isArray(cluster.instances) ? cluster.instances : []).map((i) => el("li", {},
    i && i.name != null ? `${i.name}: ${i.clients} clients, seen ${fmtAge(i.lastSeen, now)} ago` : JSON.stringify(i)));
  $("cluster-fields").replaceChildren(...fields);
  $("cluster-instances").replaceChildren(...instances);
}

// Counters: all of them, the limits and defences that bit first; one of
// those whose value changed since the previous poll has class "moved" for
// MOVED_MS (traffic counters move all the time and are not flagged).
const MOVED_MS = 3000;
const counterSeen = new Map();  // key → last value
const counterMoved = new Map(); // key → time until which it shows as moved

function renderCounters(counters) {
  const now = Date.now();
  const items = counters.map((c) => {
    const key = c.labels ? `${c.name}{${c.labels}}` : c.name;
    if (!c.traffic && counterSeen.has(key) && counterSeen.get(key) !== c.value) counterMoved.set(key, now + MOVED_MS);
    counterSeen.set(key, c.value);
    return { c, key, moved: (counterMoved.get(key) || 0) > now };
  });
  // Limits and defences that bit first, then traffic, then zeros; the
  // sort is stable, so the server's order stays within each group.
  const group = (c) => (c.value === 0 ? 2 : c.traffic ? 1 : 0);
  items.sort((a, b) => group(a.c) - group(b.c));
  const view = items.map(({ c, key, moved }) => [key, c.value, moved]);
  if (unchanged("counters", view)) return;
  $("counters").replaceChildren(...items.map(({ c, key, moved }) => {
    const li = el("li", { className: (c.value === 0 ? "zero" : "") + (moved ? " moved" : ""), title: `${key}\n${c.help || ""}` },
      el("span", { className: "name" }, c.name.replace(/^moebius_/, ""),
        c.labels ? el("span", { className: "labels" }, `{${c.labels}}`) : null),
      el("span", { className: "value" }, String(c.value)));
    li.dataset.counter = key;
    return li;
  }));
  if (!items.length) $("counters").append(el("li", { className: "empty" }, "no counters"));
}

// A stack, with each file:line:col in a span of its own so that it stands out.
function stackPre(stack) {
  const pre = el("pre");
  const loc = /[^\s()]+:\d+:\d+/g;
  let at = 0;
  for (const m of stack.matchAll(loc)) {
    pre.append(stack.slice(at, m.index), el("span", { className: "loc" }, m[0]));
    at = m.index + m[0].length;
  }
  pre.append(stack.slice(at));
  return pre;
}

function renderErrors(errors) {
  if (unchanged("errors", errors)) return;
  const ul = $("errors");
  ul.replaceChildren(...errors.map((e) => el("li", { className: "error" },
    el("div", { className: "head" },
      el("span", { className: "when", title: e.time ?? "" }, fmtTime(e.time)),
      el("span", { className: "code" }, e.code ?? ""),
      el("span", { className: "who" }, "client ", e.client ?? ""),
      el("span", { className: "who" }, "command ", e.command ?? "")),
    el("div", { className: "message" }, e.message ?? ""),
    e.stack ? stackPre(e.stack) : null)));
  if (!errors.length) ul.append(el("li", { className: "empty" }, "no errors"));
}

function renderReloads(reloads) {
  if (unchanged("reloads", reloads)) return;
  const ul = $("reloads");
  ul.replaceChildren(...reloads.map((r) => {
    const li = el("li", { className: "reload" },
      el("span", { className: "gen" }, "#" + r.generation),
      el("span", { className: "when", title: r.time ?? "" }, fmtTime(r.time)),
      r.ok ? el("span", { className: "ok" }, "ok") : el("span", { className: "failed" }, r.error || "failed"));
    li.dataset.generation = String(r.generation);
    li.dataset.ok = String(r.ok === true);
    return li;
  }));
  if (!reloads.length) ul.append(el("li", { className: "empty" }, "none yet"));
}

// ---- Charts ----------------------------------------------------------------
// drawChart(svg, series, {unit}) draws lines of N points each (oldest first,
// one a second, null for none) into the <svg>, scaled to its size: a grid
// line at the top value (labelled) and at half, and the time span below.
// A series with area: true is filled down to zero.

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart(svg, series, { unit }) {
  const max = niceCeil(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null))));
  const maxLabel = (max >= 100 || Number.isInteger(max) ? String(max) : max.toPrecision(2)) + unit;
  const W = svg.clientWidth || 600, H = svg.clientHeight || 120;
  const left = 10 + 6 * maxLabel.length, right = 6, top = 6, bottom = 16; // room for the top label
  const pw = W - left - right, ph = H - top - bottom;
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const x = (i) => left + (i * pw) / (n - 1);
  const y = (v) => top + ph - (v / max) * ph;

  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const parts = [
    svgEl("line", { class: "grid", x1: left, x2: W - right, y1: y(max), y2: y(max) }),
    svgEl("line", { class: "grid", x1: left, x2: W - right, y1: y(max / 2), y2: y(max / 2) }),
    svgEl("line", { class: "axis", x1: left, x2: W - right, y1: y(0), y2: y(0) }),
    svgEl("text", { x: left - 4, y: y(max) + 4, "text-anchor": "end" }, maxLabel),
    svgEl("text", { x: left - 4, y: y(0), "text-anchor": "end" }, "0"),
    svgEl("text", { x: left, y: H - 3 }, `−${Math.round(n / 60)}m`),
    svgEl("text", { x: W - right, y: H - 3, "text-anchor": "end" }, "now"),
  ];
  for (const s of series) {
    // The line breaks where a value is null; a point alone still shows as a dot.
    let d = "", pen = false;
    s.values.forEach((v, i) => {
      if (v == null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)}`;
      if (!pen) d += "l0.1 0";
      pen = true;
    });
    if (s.area && s.values.length) {
      const area = s.values.map((v, i) => `${x(i).toFixed(1)} ${y(v ?? 0).toFixed(1)}`).join("L");
      parts.push(svgEl("path", { class: "area", d: `M${x(0)} ${y(0)}L${area}L${x(s.values.length - 1)} ${y(0)}Z` }));
    }
    if (d) parts.push(svgEl("path", { class: `line ${s.cls}`, d }));
  }
  svg.replaceChildren(...parts);
}

// ---- Client table ------------------------------------------------------------
// The server sorts, filters and pages (10,000 clients are never all here):
// the page asks for one page at a time through the query parameters.

const clientsView = { sort: "id", desc: false, offset: 0, limit: 50, filter: "" };
let clientsTotal = 0;

function clientsQuery() {
  const q = new URLSearchParams({ sort: clientsView.sort, offset: clientsView.offset, limit: clientsView.limit });
  if (clientsView.desc) q.set("desc", "1");
  if (clientsView.filter) q.set("filter", clientsView.filter);
  return q.toString();
}

function renderClients(c, now) {
  if (!c) return;
  clientsTotal = c.total ?? 0;
  const rows = c.rows || [];
  // The page we were on emptied (clients left): go to the last one there is.
  if (!rows.length && clientsView.offset > 0 && clientsTotal > 0) {
    clientsView.offset = Math.floor((clientsTotal - 1) / clientsView.limit) * clientsView.limit;
    pollNow();
  }
  const first = c.offset ?? clientsView.offset;
  $("clients-range").textContent = rows.length ? `${first + 1}–${first + rows.length} of ${clientsTotal}` : `0 of ${clientsTotal}`;
  $("clients-prev").disabled = clientsView.offset <= 0;
  $("clients-next").disabled = clientsView.offset + clientsView.limit >= clientsTotal;
  for (const th of document.querySelectorAll("#clients-table th[data-sort]")) {
    const on = th.dataset.sort === clientsView.sort;
    th.className = (th.classList.contains("n") ? "n " : "") + (on ? (clientsView.desc ? "desc" : "asc") : "");
    th.setAttribute("aria-sort", on ? (clientsView.desc ? "descending" : "ascending") : "none");
  }
  fillTable($("clients-table"), rows.map((r) => [{ clientId: r.id }, [
    { text: r.id, title: r.id },
    r.remote ?? "",
    num(r.worker),
    { text: r.state ?? "", className: "state-" + r.state },
    r.command ?? "",
    r.since ? { text: fmtAge(r.since, now), title: r.since } : "",
    num(r.queued),
    { text: fmtBytes(r.sendQueueBytes), className: "n" },
  ]]), 8);
}

for (const th of document.querySelectorAll("#clients-table th[data-sort]")) {
  th.addEventListener("click", () => {
    if (clientsView.sort === th.dataset.sort) clientsView.desc = !clientsView.desc;
    else Object.assign(clientsView, { sort: th.dataset.sort, desc: false });
    clientsView.offset = 0;
    pollNow();
  });
}
$("clients-prev").addEventListener("click", () => {
  clientsView.offset = Math.max(0, clientsView.offset - clientsView.limit);
  pollNow();
});
$("clients-next").addEventListener("click", () => {
  if (clientsView.offset + clientsView.limit < clientsTotal) clientsView.offset += clientsView.limit;
  pollNow();
});
let filterTimer = null;
$("clients-filter").addEventListener("input", (ev) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    clientsView.filter = ev.target.value.trim();
    clientsView.offset = 0;
    pollNow();
  }, 250);
});

// ---- Console -------------------------------------------------------------------
// Shown when the server has admin_console on. An EventSource brings the
// session token and then the replies to this page's console clients; the
// buttons post JSON (the server refuses any other content type).

let consoleEvents = null; // the EventSource, while the panel is shown
let consoleSession = "";  // the token from its "session" event

function showConsole(on) {
  $("console").hidden = !on;
  document.body.classList.toggle("with-console", on);
  // (Re)open the stream; the browser gives up on one that the server refused.
  if (on && (!consoleEvents || consoleEvents.readyState === EventSource.CLOSED)) openConsoleEvents();
  if (!on && consoleEvents) {
    consoleEvents.close();
    consoleEvents = null;
    consoleSession = "";
    $("console-state").textContent = "no session";
  }
}

function consoleLine(cls, id, text) {
  const out = $("console-output");
  const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
  const div = el("div", { className: cls }, text);
  if (id != null) div.dataset.id = id;
  out.append(div);
  if (atEnd) out.scrollTop = out.scrollHeight;
}

// parse reads an event's JSON data; a malformed one is shown, not thrown.
function parse(ev) {
  try { return JSON.parse(ev.data); } catch { consoleLine("fail", null, "bad event data: " + ev.data); return null; }
}

function openConsoleEvents() {
  const es = new EventSource("/dashboard/api/console");
  consoleEvents = es;
  es.addEventListener("session", (ev) => {
    const d = parse(ev);
    if (!d) return;
    if (consoleSession) consoleLine("info", null, "new console session: connect again");
    consoleSession = d.session;
    $("console-state").textContent = "session open";
  });
  es.addEventListener("reply", (ev) => {
    const d = parse(ev);
    if (d) consoleLine("reply", d.id, (d.frames || []).join(" | "));
  });
  es.addEventListener("closed", (ev) => {
    const d = parse(ev);
    if (d) consoleLine("closed", d.id, "closed by the server");
  });
  // The browser reconnects by itself; the server then starts a new session.
  es.addEventListener("error", () => { $("console-state").textContent = "reconnecting…"; });
}

// consolePost posts JSON and gives the answer's JSON, or shows the error
// inline and gives null.
async function consolePost(path, body) {
  if (!consoleSession) { consoleLine("fail", null, "no console session yet"); return null; }
  try {
    const res = await fetch("/dashboard/api/console/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session: consoleSession, ...body }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      consoleLine("fail", null, `${path}: ${res.status} ${data.error || res.statusText}`);
      return null;
    }
    return data;
  } catch (err) {
    consoleLine("fail", null, `${path}: ${err.message}`);
    return null;
  }
}

const consoleId = () => $("console-id").value.trim();

$("console-connect").addEventListener("click", async () => {
  const id = consoleId();
  const d = await consolePost("connect", { id });
  if (d) consoleLine("info", null, `connected as ${d.id || id}`);
});
$("console-disconnect").addEventListener("click", async () => {
  const id = consoleId();
  if (await consolePost("disconnect", { id })) consoleLine("info", null, `disconnected ${id}`);
});
async function consoleSend() {
  const id = consoleId(), text = $("console-message").value;
  consoleLine("sent", id, text); // before the post: a reply may come back before its answer
  await consolePost("send", { id, frames: [text] });
}
$("console-send").addEventListener("click", consoleSend);
$("console-message").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); consoleSend(); }
});

// ---- Start -----------------------------------------------------------------------

poll();

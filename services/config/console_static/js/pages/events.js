// The event log (newest first; searched on the server by status, time range and values
// of the body, headers and custom variables; pages via "Older"; the first page live),
// a bulk replay of the log's selection, and one event: its request, raw and parsed
// body, mapping, drift and execution log; Replay, Dry-run.
import { api } from "../api.js";
import { confirmDialog, fmtTime, h, json, toast, uid } from "../ui.js";

const STATUSES = ["", "received", "succeeded", "failed", "rejected", "handshake", "dead_lettered"];
const STATUS_LABELS = { "": "any status", dead_lettered: "dead-lettered" };
// The log's status → a bulk replay's (only these three can be replayed in bulk).
const BULK_STATUSES = { "": "any", failed: "failed", dead_lettered: "dead_lettered" };
const FIELDS = ["body", "headers", "custom_variables"];
const MAX_CONDITIONS = 10;
const POLL_MS = 2000;
const JOB_POLL_MS = 1000;
let timers = [];

export function leave() { timers.forEach(clearInterval); timers = []; }

function badge(status) { return h("span", { class: `badge ${status || ""}` }, status || "—"); }
function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

// ------------------------------------------------------------------ the selection

// "body.customer.email=ana@example.com" → { name, value }; an Error saying what is wrong.
function parseCondition(raw) {
  const at = raw.indexOf("=");
  if (at < 0) throw new Error(`"${raw}": write field=value, e.g. body.customer.email=ana@example.com`);
  const name = raw.slice(0, at).trim();
  const value = raw.slice(at + 1).trim();
  const [field, ...rest] = name.split(".");
  if (!FIELDS.includes(field) || !rest.length) {
    throw new Error(`"${name}": search by body.<path>, headers.<name> or custom_variables.<name>`);
  }
  return { name, value };
}

// A datetime-local value (the browser's time zone) as an ISO time in UTC; null if empty.
function isoOf(input, label) {
  const v = input.value.trim();
  if (!v) return null;
  const d = new Date(v);
  if (isNaN(d)) throw new Error(`${label}: not a date and time`);
  return d.toISOString();
}

function describe(sel) {
  const parts = [sel.status ? `status ${STATUS_LABELS[sel.status] || sel.status}` : "any status"];
  for (const c of sel.conditions) parts.push(`${c.name}=${c.value}`);
  if (sel.after) parts.push(`received after ${fmtTime(sel.after)}`);
  if (sel.before) parts.push(`received before ${fmtTime(sel.before)}`);
  return parts.join(" · ");
}

function eventsPath(connectorId, sel, limit, cursor) {
  const q = [`limit=${limit}`];
  const add = (k, v) => q.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (sel.status) add("status", sel.status);
  if (sel.after) add("received_after", sel.after);
  if (sel.before) add("received_before", sel.before);
  for (const c of sel.conditions) add(c.name, c.value);
  if (cursor) add("before", cursor);
  return `/connectors/${connectorId}/events?${q.join("&")}`;
}

// The log's selection as a bulk replay's body: values nested as in the payload
// (body.customer.region=eu → {"body": {"customer": {"region": "eu"}}}).
export function bulkSelection(sel) {
  const status = BULK_STATUSES[sel.status];
  if (status === undefined) {
    throw new Error(`A bulk replay takes failed, dead-lettered or any status, not ${STATUS_LABELS[sel.status] || sel.status}`);
  }
  const body = { status };
  if (sel.after) body.received_after = sel.after;
  if (sel.before) body.received_before = sel.before;
  for (const { name, value } of sel.conditions) {
    const [field, ...rest] = name.split(".");
    const keys = rest.map((k) => k.replace(/\[\d+\]/g, "")); // list positions are ignored
    if (keys.some((k) => !k || /[[\]"']/.test(k))) {
      throw new Error(`${name}: a bulk replay takes dotted paths, e.g. body.customer.region`);
    }
    const clash = new Error(`${name}: a bulk replay matches one value per field (given twice, or with a field inside it)`);
    let node = (body[field] ||= {});
    for (const k of keys.slice(0, -1)) {
      if (!(k in node)) node[k] = {};
      else if (typeof node[k] !== "object") throw clash;
      node = node[k];
    }
    const last = keys[keys.length - 1];
    if (last in node) throw clash;
    node[last] = value;
  }
  return body;
}

// ------------------------------------------------------------------ the log

// The log as a panel: used on its own page and beside the connector's settings; with
// the bulk replay of its selection below it.
export function renderLog(connectorId, { limit = 50 } = {}) {
  const status = h("select", { id: "log-status", name: "status" },
    STATUSES.map((s) => h("option", { value: s }, STATUS_LABELS[s] || s)));
  const after = h("input", { id: "log-after", name: "received_after", type: "datetime-local", step: 1 });
  const before = h("input", { id: "log-before", name: "received_before", type: "datetime-local", step: 1 });
  const conditions = h("div", { id: "log-conditions" });
  const problem = h("p", { class: "problem", id: "log-problem", role: "alert", hidden: true });
  const body = h("tbody", {});
  const note = h("p", { class: "muted", id: "log-note", "aria-live": "polite" });
  const table = h("table", { id: "event-log" },
    h("thead", {}, h("tr", {}, ["Received", "Status", "Event", "Reason / error"].map((t) => h("th", { scope: "col" }, t)))), body);
  const older = h("button", { type: "button", class: "secondary shrink", id: "log-older", disabled: true,
    onclick: () => { if (next) { pages.push(next); load(); } } }, "Older");
  const newest = h("button", { type: "button", class: "secondary shrink", id: "log-newest", hidden: true,
    onclick: () => { pages = [null]; load(); } }, "Back to the newest");

  let applied = { status: "", conditions: [], after: null, before: null };
  let pages = [null]; // the cursor each page starts at; null: the newest (live) page
  let next = null;
  let refused = false;
  let shown = "";
  let loads = 0;
  const listeners = [];

  function conditionRow(value = "") {
    const id = uid("log-condition");
    const el = h("input", { id, class: "log-condition", type: "text", value, autocomplete: "off", spellcheck: "false",
      placeholder: "body.customer.email=ana@example.com", "aria-describedby": "log-conditions-help" });
    const row = h("div", { class: "row log-condition-row" },
      h("div", {}, h("label", { for: id }, "Field = value"), el),
      h("button", { type: "button", class: "secondary shrink", "aria-label": "Remove this condition",
        onclick: () => { row.remove(); if (!conditions.children.length) conditions.append(conditionRow()); addButton.focus(); } }, "Remove"));
    return row;
  }
  const addButton = h("button", { type: "button", class: "secondary shrink", id: "log-add-condition",
    onclick: () => {
      if (conditions.children.length >= MAX_CONDITIONS) { toast(`At most ${MAX_CONDITIONS} conditions`, true); return; }
      const row = conditionRow(); conditions.append(row); row.querySelector("input").focus();
    } }, "Add a condition");
  conditions.append(conditionRow());

  function say(message) { problem.hidden = !message; problem.textContent = message || ""; }

  function read() {
    const conds = [...conditions.querySelectorAll("input.log-condition")]
      .map((el) => el.value.trim()).filter(Boolean).map(parseCondition);
    if (conds.length > MAX_CONDITIONS) throw new Error(`At most ${MAX_CONDITIONS} conditions`);
    return { status: status.value, conditions: conds, after: isoOf(after, "Received after"), before: isoOf(before, "Received before") };
  }

  function apply() {
    let sel;
    try { sel = read(); } catch (err) { say(err.message); return; }
    say("");
    applied = sel;
    pages = [null];
    refused = false;
    shown = "";
    listeners.forEach((fn) => fn(applied));
    load();
  }

  function draw(items) {
    const key = JSON.stringify([pages.length, next, items.map((e) => [e.event_id, e.status, e.replay_of])]);
    if (key === shown) return;
    shown = key;
    body.replaceChildren(...items.map((e) => h("tr", {
      class: "clickable", dataset: { event: e.event_id, status: e.status || "", replayOf: e.replay_of || "" },
      onclick: () => { location.hash = `#/connectors/${connectorId}/events/${e.event_id}`; },
    },
      h("td", {}, fmtTime(e.received_at)), h("td", {}, badge(e.status)),
      h("td", {}, h("a", { href: `#/connectors/${connectorId}/events/${e.event_id}`, class: "mono" }, e.event_id.slice(-10))),
      h("td", {}, e.reason ? h("code", {}, e.reason) : null, " ", e.error || "",
        e.replay_of ? h("span", { class: "muted replay-of" }, e.error || e.reason ? " · " : "", "replay of ",
          h("a", { href: `#/connectors/${connectorId}/events/${e.replay_of}`, class: "mono", onclick: (ev) => ev.stopPropagation() },
            `…${e.replay_of.slice(-10)}`)) : null))));
    const filtered = applied.status || applied.conditions.length || applied.after || applied.before;
    const page = pages.length > 1 ? `page ${pages.length}, ` : "";
    note.textContent = items.length
      ? `${items.length} ${filtered ? "matching" : "shown"}, ${page}newest first${next ? " · Older for more" : ""}`
      : filtered ? `No event matches ${describe(applied)}` : pages.length > 1 ? "No older events" : "No events yet";
    older.disabled = !next;
    newest.hidden = pages.length === 1;
  }

  async function load({ quiet = false } = {}) {
    if (refused) return;
    const seq = ++loads;
    const cursor = pages[pages.length - 1];
    let data;
    try {
      data = await api.get(eventsPath(connectorId, applied, limit, cursor));
    } catch (err) {
      if (seq !== loads) return;
      if (err.status === 400) {
        // A search the API refuses (invalid_search, a bad time): say why beside the form
        // (an alert), and stop polling it.
        refused = true;
        say(`The search was refused: ${err.message}`);
        body.replaceChildren();
        shown = "";
        note.textContent = "";
        older.disabled = true;
      } else if (!quiet) toast(err.message, true);
      return;
    }
    if (seq !== loads) return; // a newer load is under way
    next = data.next_before || null;
    draw(data.items);
  }

  const form = h("form", { id: "log-filters", role: "search", "aria-label": "Search the event log",
    onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "log-status" }, "Status"), status),
      h("div", {}, h("label", { for: "log-after" }, "Received after"), after),
      h("div", {}, h("label", { for: "log-before" }, "Received before"), before)),
    conditions,
    h("p", { class: "muted", id: "log-conditions-help" },
      "body.<path>, headers.<name> or custom_variables.<name>; all must hold; values compared as text."),
    h("div", { class: "row" }, addButton,
      h("button", { type: "submit", class: "shrink", id: "log-search-button" }, "Search"),
      h("button", { type: "button", class: "secondary shrink", id: "log-clear", onclick: () => {
        status.value = ""; after.value = ""; before.value = "";
        conditions.replaceChildren(conditionRow());
        apply();
      } }, "Clear")),
    problem);
  status.addEventListener("change", apply);
  load();
  timers.push(setInterval(() => { if (pages.length === 1) load({ quiet: true }); }, POLL_MS));
  const log = h("section", { class: "card", "aria-labelledby": "log-title" },
    h("h2", { id: "log-title" }, "Event log"),
    form, note, table,
    h("div", { class: "row log-pages" }, newest, older));
  const bulk = bulkPanel(connectorId, () => applied);
  listeners.push(bulk.reset);
  return h("div", { class: "log-panel" }, log, bulk.node);
}

// ------------------------------------------------------------------ bulk replay

function bulkPanel(connectorId, selection) {
  const summary = h("p", { id: "bulk-selection" });
  const plan = h("p", { id: "bulk-plan", "aria-live": "polite" });
  const start = h("button", { type: "button", class: "shrink", id: "bulk-start", hidden: true }, "Replay");
  const count = h("button", { type: "button", class: "secondary shrink", id: "bulk-count" }, "Count");
  const bar = h("progress", { id: "bulk-progress-bar", max: 1, value: 0, "aria-labelledby": "bulk-progress-text" });
  const text = h("span", { id: "bulk-progress-text" });
  const cancel = h("button", { type: "button", class: "danger shrink", id: "bulk-cancel", hidden: true }, "Cancel");
  const progress = h("div", { id: "bulk-progress", class: "row", hidden: true, "aria-live": "polite" }, bar, text, cancel);
  const jobs = h("div", { id: "bulk-jobs" });
  let matched = null;
  let following = null; // the job id whose progress is shown
  let timer = null;

  function reset() {
    matched = null;
    plan.textContent = "";
    start.hidden = true;
    let body = null;
    try { body = bulkSelection(selection()); } catch (err) { summary.textContent = err.message; }
    if (body) summary.textContent = `The log's selection: ${describe(selection())}.`;
    count.disabled = !body;
  }

  count.addEventListener("click", async () => {
    let body;
    try { body = bulkSelection(selection()); } catch (err) { toast(err.message, true); return; }
    count.disabled = true;
    try {
      const r = await api.post(`/connectors/${connectorId}/bulk-replay`, { ...body, plan: true });
      matched = r.matched;
      plan.textContent = `${plural(r.matched, "event matches", "events match")}`;
      start.textContent = `Replay ${plural(r.matched, "event", "events")}`;
      start.hidden = r.matched === 0;
    } catch (err) { plan.textContent = ""; toast(err.message, true); } finally { count.disabled = false; }
  });

  start.addEventListener("click", async () => {
    let body;
    try { body = bulkSelection(selection()); } catch (err) { toast(err.message, true); return; }
    const ok = await confirmDialog(`Replay ${plural(matched, "event", "events")}?`,
      "Each runs again as a new event (its replay of links the original), against the current version, oldest first, in the background. Events logged from now on are not selected.",
      { okLabel: "Replay" });
    if (!ok) return;
    start.disabled = true;
    try {
      const job = await api.post(`/connectors/${connectorId}/bulk-replay`, body);
      start.hidden = true;
      plan.textContent = `Started: ${plural(job.matched, "event", "events")} to replay`;
      follow(job.id);
    } catch (err) { toast(err.message, true); } finally { start.disabled = false; }
  });

  cancel.addEventListener("click", async () => {
    if (!following) return;
    cancel.disabled = true;
    try { show(await api.delete(`/bulk-replays/${following}`)); } catch (err) { toast(err.message, true); } finally { cancel.disabled = false; }
  });

  function show(job) {
    progress.hidden = false;
    bar.max = Math.max(job.matched, 1);
    bar.value = job.matched ? job.done : 1;
    text.textContent = `${job.done} of ${job.matched} replayed${job.skipped ? `, ${job.skipped} skipped` : ""} · ${job.state}${job.error ? ` · ${job.error}` : ""}`;
    progress.dataset.state = job.state;
    cancel.hidden = job.state !== "running";
    if (job.state !== "running") {
      if (timer) { clearInterval(timer); timer = null; }
      if (following === job.id) {
        following = null;
        toast(job.state === "done" ? `Bulk replay done: ${plural(job.done, "event", "events")} replayed` : `Bulk replay ${job.state}`);
      }
      list().catch(() => {});
    }
  }

  function follow(id) {
    following = id;
    if (timer) clearInterval(timer);
    const tick = async () => {
      try { show(await api.get(`/bulk-replays/${id}`)); } catch (err) { if (err.status === 404) { clearInterval(timer); timer = null; } }
    };
    timer = setInterval(tick, JOB_POLL_MS);
    timers.push(timer);
    tick();
    list().catch(() => {});
  }

  function selectionText(s) {
    const parts = [`status ${s.status || "failed"}`];
    const leaves = (v, path) => (v && typeof v === "object" && !Array.isArray(v)
      ? Object.entries(v).flatMap(([k, x]) => leaves(x, `${path}.${k}`)) : [`${path}=${Array.isArray(v) ? v.join("|") : v}`]);
    for (const f of FIELDS) if (s[f]) parts.push(...leaves(s[f], f));
    if (s.received_after) parts.push(`after ${fmtTime(s.received_after)}`);
    if (s.received_before) parts.push(`before ${fmtTime(s.received_before)}`);
    return parts.join(" · ");
  }

  async function list() {
    const { items } = await api.get(`/connectors/${connectorId}/bulk-replays`);
    const recent = items.slice(0, 5);
    jobs.replaceChildren(recent.length
      ? h("table", { id: "bulk-job-list" },
          h("caption", { class: "muted" }, "Recent bulk replays, newest first"),
          h("thead", {}, h("tr", {}, ["Started", "State", "Replayed", "Selection"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, recent.map((j) => h("tr", { dataset: { job: j.id, state: j.state } },
            h("td", {}, fmtTime(j.created_at)), h("td", {}, h("span", { class: `badge ${j.state}` }, j.state)),
            h("td", {}, `${j.done} of ${j.matched}${j.skipped ? ` (${j.skipped} skipped)` : ""}`),
            h("td", { class: "mono" }, selectionText(j.selection))))))
      : h("p", { class: "muted" }, "No bulk replay yet."));
    const running = items.find((j) => j.state === "running");
    if (running && !following) follow(running.id);
  }

  reset();
  list().catch((err) => toast(err.message, true));
  const node = h("section", { class: "card", id: "bulk-replay", "aria-labelledby": "bulk-title" },
    h("h2", { id: "bulk-title" }, "Bulk replay"),
    h("p", { class: "muted" }, "Runs again every event the log's selection picks (status failed, dead-lettered or any, its time range and conditions): count them first."),
    summary,
    h("div", { class: "row" }, count, start),
    plan, progress, jobs);
  return { node, reset };
}

// ------------------------------------------------------------------ one event

function kv(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("p", { class: "muted" }, "none");
  return h("table", {}, h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "mono" }, typeof v === "string" ? v : JSON.stringify(v))))));
}

function executionLog(steps) {
  if (!steps || !steps.length) return h("p", { class: "muted" }, "No step ran.");
  return h("table", { id: "execution-log" },
    h("thead", {}, h("tr", {}, ["Step", "Type", "Status", "Duration", "Details"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, steps.map((s) => h("tr", { dataset: { step: s.step_id, status: s.status } },
      h("td", { class: "mono" }, s.step_id), h("td", {}, s.type), h("td", {}, badge(s.status)),
      h("td", {}, s.duration_ms !== undefined ? `${Number(s.duration_ms).toFixed(1)} ms` : ""),
      h("td", {}, s.error ? h("p", { class: "problem" }, s.error) : null,
        (s.inputs || s.output || s.outputs) ? h("details", {}, h("summary", {}, "inputs and outputs"),
          h("pre", {}, json({ inputs: s.inputs, output: s.output ?? s.outputs }))) : null)))));
}

async function eventPage(connectorId, eventId) {
  const [connector, e, versions] = await Promise.all([
    api.get(`/connectors/${connectorId}`),
    api.get(`/connectors/${connectorId}/events/${eventId}`),
    api.get(`/connectors/${connectorId}/versions`),
  ]);
  const result = h("div", { id: "event-action-result", "aria-live": "polite" });
  const version = h("select", { id: "replay-version" }, versions.items.map((v) => h("option", { value: v.version }, `version ${v.version}${v.version === connector.version ? " (current)" : ""}`)));
  const isEvent = !["rejected", "handshake"].includes(e.status);
  const actions = isEvent ? h("section", { class: "card", "aria-label": "Replay and dry-run" },
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "replay-version" }, "Against"), version),
      h("button", { type: "button", class: "shrink", id: "replay", onclick: async () => {
        try {
          const r = await api.post(`/connectors/${connectorId}/events/${eventId}/replay`, { version: Number(version.value) });
          result.replaceChildren(h("p", {}, "Replayed as ", h("a", { href: `#/connectors/${connectorId}/events/${r.event_id}` }, r.event_id)));
        } catch (err) { toast(err.message, true); }
      } }, "Replay"),
      h("button", { type: "button", class: "secondary shrink", id: "dry-run", onclick: async () => {
        try {
          const r = await api.post(`/connectors/${connectorId}/events/${eventId}/dry-run`, { version: Number(version.value) });
          result.replaceChildren(h("h3", {}, `Dry-run: ${r.status}`), executionLog(r.execution));
        } catch (err) { toast(err.message, true); }
      } }, "Dry-run")), result) : null;
  const raw = e.raw_body;
  return h("div", {},
    h("p", {}, h("a", { href: `#/connectors/${connectorId}` }, `← ${connector.name}`)),
    h("h1", {}, "Event ", h("span", { class: "mono" }, e.event_id), " ", badge(e.status),
      e.dead_lettered ? [" ", h("span", { class: "badge failed", id: "event-dead-lettered" }, "dead-lettered")] : null),
    h("p", { class: "muted", id: "event-meta" }, `received ${fmtTime(e.received_at)}`,
      e.replay_of ? [" · a replay of ", h("a", { href: `#/connectors/${connectorId}/events/${e.replay_of}`, class: "mono", id: "event-replay-of" }, e.replay_of)] : null,
      e.attempts ? ` · ${e.attempts} attempt(s)` : "",
      h("span", { id: "event-expires" }, e.expire_at ? ` · kept until ${fmtTime(e.expire_at)}` : "")),
    e.error ? h("p", { class: "problem", role: "alert" }, e.reason ? h("code", {}, e.reason) : null, " ", e.error) : null,
    e.dead_lettered ? h("p", { class: "problem" }, "Dead-lettered: it failed after its last attempt. Replay it (or bulk-replay the dead-lettered events from the log) once the cause is fixed.") : null,
    e.note ? h("p", {}, "Answered: ", e.note) : null,
    e.degraded ? h("p", { class: "problem" }, "Stored degraded: ", e.degraded) : null,
    actions,
    h("section", { class: "card", id: "execution" }, h("h2", {}, "Execution log"), executionLog(e.execution)),
    h("div", { class: "split" },
      h("section", { class: "card" }, h("h2", {}, "Parsed body"), h("pre", { id: "parsed-body" }, json(e.event.body)),
        h("h3", {}, "Custom variables"), kv(e.event.custom_variables)),
      h("section", { class: "card" }, h("h2", {}, "Request"),
        h("p", {}, `${e.request ? e.request.method : ""} from ${e.request ? e.request.source_ip : "?"}`),
        h("h3", {}, "Headers"), kv(e.request && e.request.headers),
        h("h3", {}, `Raw body${raw ? ` (${raw.size} bytes, ${raw.encoding})` : ""}${e.raw_truncated ? ", first 64 KiB" : ""}`),
        h("pre", { id: "raw-body" }, raw ? raw.data : "—"))),
    h("div", { class: "split" },
      h("section", { class: "card" }, h("h2", {}, "Mapping"), h("pre", {}, json(e.mapping))),
      h("section", { class: "card" }, h("h2", {}, "Drift"), h("pre", {}, json(e.drift)))));
}

export async function render(view, connectorId, eventId) {
  if (view === "event") return eventPage(connectorId, eventId);
  const connector = await api.get(`/connectors/${connectorId}`);
  return h("div", {}, h("p", {}, h("a", { href: `#/connectors/${connectorId}` }, `← ${connector.name}`)),
    h("h1", {}, `${connector.name}: event log`), renderLog(connectorId, { limit: 100 }));
}

// The event log (newest first, status filter, payload search, live) and one event:
// its request, raw and parsed body, mapping, drift and execution log; Replay, Dry-run.
import { api } from "../api.js";
import { fmtTime, h, json, toast } from "../ui.js";

const STATUSES = ["", "received", "succeeded", "failed", "rejected", "handshake"];
const POLL_MS = 2000;
let timers = [];

export function leave() { timers.forEach(clearInterval); timers = []; }

function badge(status) { return h("span", { class: `badge ${status || ""}` }, status || "—"); }

// The log as a panel: used on its own page and beside the connector's settings.
export function renderLog(connectorId, { limit = 50 } = {}) {
  const status = h("select", { id: "log-status", name: "status" }, STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const search = h("input", { id: "log-search", type: "search", name: "search", placeholder: "text in the payload" });
  const body = h("tbody", {});
  const note = h("p", { class: "muted", "aria-live": "polite" });
  const table = h("table", { id: "event-log" },
    h("thead", {}, h("tr", {}, ["Received", "Status", "Event", "Reason / error"].map((t) => h("th", { scope: "col" }, t)))), body);
  const details = new Map(); // event id → raw text, for the payload search
  let shown = "";

  async function refresh() {
    const q = status.value ? `&status=${status.value}` : "";
    const { items } = await api.get(`/connectors/${connectorId}/events?limit=${limit}${q}`);
    let rows = items;
    const needle = search.value.trim().toLowerCase();
    if (needle) {
      await Promise.all(items.filter((e) => !details.has(e.event_id)).map(async (e) => {
        const d = await api.get(`/connectors/${connectorId}/events/${e.event_id}`);
        details.set(e.event_id, JSON.stringify([d.raw_body && d.raw_body.data, d.event, d.request]).toLowerCase());
      }));
      rows = items.filter((e) => (details.get(e.event_id) || "").includes(needle));
    }
    const key = JSON.stringify(rows.map((e) => [e.event_id, e.status]));
    if (key === shown) return;
    shown = key;
    body.replaceChildren(...rows.map((e) => h("tr", {
      class: "clickable", dataset: { event: e.event_id, status: e.status || "" },
      onclick: () => { location.hash = `#/connectors/${connectorId}/events/${e.event_id}`; },
    },
      h("td", {}, fmtTime(e.received_at)), h("td", {}, badge(e.status)),
      h("td", {}, h("a", { href: `#/connectors/${connectorId}/events/${e.event_id}`, class: "mono" }, e.event_id.slice(-10))),
      h("td", {}, e.reason ? h("code", {}, e.reason) : null, " ", e.error || ""))));
    note.textContent = rows.length ? `${rows.length} shown, newest first` : "No events yet";
  }
  status.addEventListener("change", () => { shown = ""; refresh(); });
  search.addEventListener("input", () => { shown = ""; refresh(); });
  refresh().catch((e) => toast(e.message, true));
  timers.push(setInterval(() => refresh().catch(() => {}), POLL_MS));
  return h("section", { class: "card", "aria-labelledby": "log-title" },
    h("h2", { id: "log-title" }, "Event log"),
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "log-status" }, "Status"), status),
      h("div", {}, h("label", { for: "log-search" }, "Search the payload"), search)),
    note, table);
}

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
    h("h1", {}, "Event ", h("span", { class: "mono" }, e.event_id), " ", badge(e.status)),
    h("p", { class: "muted" }, `received ${fmtTime(e.received_at)}`, e.replay_of ? ` · a replay of ${e.replay_of}` : "",
      e.attempts ? ` · ${e.attempts} attempt(s)` : ""),
    e.error ? h("p", { class: "problem", role: "alert" }, e.reason ? h("code", {}, e.reason) : null, " ", e.error) : null,
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

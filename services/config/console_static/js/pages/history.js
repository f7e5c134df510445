// A connector's stats (counters since creation or the last reset; Reset) and its kept
// versions (newest first; what changed between two, computed here; Restore).
import { api } from "../api.js";
import { confirmDialog, fmtTime, h, toast } from "../ui.js";

const POLL_MS = 2000;
const COUNTERS = [
  ["received", "Received"], ["succeeded", "Succeeded"], ["failed", "Failed"],
  ["duplicates", "Duplicates"], ["rejected", "Rejected"], ["handshakes", "Handshakes"],
];
let timers = [];

export function leave() { timers.forEach(clearInterval); timers = []; }

function back(connector) {
  return h("p", {}, h("a", { href: `#/connectors/${connector.id}`, id: "back-to-connector" }, `← ${connector.name}`));
}

function time(iso) { return h("time", { datetime: iso || "" }, fmtTime(iso)); }

// ====================================================================== stats

async function statsPage(connector) {
  const id = connector.id;
  const cells = new Map(COUNTERS.map(([key]) => [key, h("strong", { dataset: { value: key } }, "…")]));
  const since = h("span", { id: "stats-since" });
  const grid = h("div", { class: "stats", id: "stats", "aria-live": "polite" },
    COUNTERS.map(([key, label]) => h("div", { dataset: { stat: key } }, cells.get(key), label)));
  // Now, not since a reset: whether the steps wait, and how many events wait for them.
  const held = h("strong", { dataset: { value: "held" } }, "…");
  const state = h("p", { id: "stats-state" });
  const now = h("div", { class: "stats", id: "stats-now", "aria-live": "polite" },
    h("div", { dataset: { stat: "held" } }, held, "Held (waiting for Resume)"));

  function show(stats) {
    for (const [key] of COUNTERS) {
      const text = String(stats[key] ?? 0);
      if (cells.get(key).textContent !== text) cells.get(key).textContent = text;
    }
    const heldText = String(stats.held ?? 0);
    if (held.textContent !== heldText) held.textContent = heldText;
    const key = `${Boolean(stats.paused)}:${heldText}`;
    if (state.dataset.key !== key) {
      state.dataset.key = key;
      state.replaceChildren(...(stats.paused
        ? [h("span", { class: "badge paused" }, "Paused"), " Events are still stored and answered; their steps wait until the connector is resumed (on ",
            h("a", { href: `#/connectors/${id}` }, "its page"), ")."]
        : [h("span", { class: "badge succeeded" }, "Running"), stats.held ? " Resumed: the held events are being run, in arrival order." : " Steps run as events arrive."]));
    }
    if (since.dataset.iso !== stats.since) {
      since.dataset.iso = stats.since;
      since.replaceChildren(time(stats.since));
    }
  }
  async function refresh() { show(await api.get(`/connectors/${id}/stats`)); }

  const reset = h("button", { type: "button", class: "danger shrink", id: "stats-reset", onclick: async () => {
    const ok = await confirmDialog("Reset the stats?",
      `Every counter of ${connector.name} starts again from 0. The event log is kept.`, { okLabel: "Reset" });
    if (!ok) return;
    reset.disabled = true;
    try {
      show(await api.post(`/connectors/${id}/stats/reset`));
      toast("Stats reset");
    } catch (err) { toast(err.message, true); } finally { reset.disabled = false; }
  } }, "Reset");

  await refresh();
  timers.push(setInterval(() => refresh().catch(() => {}), POLL_MS));
  return h("div", { id: "stats-page" }, back(connector),
    h("h1", {}, `${connector.name}: stats`),
    h("section", { class: "card", "aria-labelledby": "stats-title" },
      h("h2", { id: "stats-title" }, "Counters"),
      grid,
      h("div", { class: "row stats-foot" },
        h("p", { class: "muted" }, "Counting since ", since, " (creation or the last reset)."),
        reset)),
    h("section", { class: "card", "aria-labelledby": "stats-now-title" },
      h("h2", { id: "stats-now-title" }, "Now"), state, now),
    h("p", { class: "muted" }, "Duplicates are repeated message ids; rejected requests failed verification or an allowed address; handshakes are the senders' URL checks."));
}

// ====================================================================== diff

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

function keyPath(path, key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

// Every difference between two JSON values: {path, kind: added|removed|changed, old, new}.
export function diff(a, b, path = "$", out = []) {
  if (isObject(a) && isObject(b)) {
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
    for (const k of keys) {
      const p = keyPath(path, k);
      if (!(k in b)) out.push({ path: p, kind: "removed", old: a[k] });
      else if (!(k in a)) out.push({ path: p, kind: "added", new: b[k] });
      else diff(a[k], b[k], p, out);
    }
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      const p = `${path}[${i}]`;
      if (i >= b.length) out.push({ path: p, kind: "removed", old: a[i] });
      else if (i >= a.length) out.push({ path: p, kind: "added", new: b[i] });
      else diff(a[i], b[i], p, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push({ path, kind: "changed", old: a, new: b });
  }
  return out;
}

function shown(value) {
  if (value === undefined) return "";
  const text = JSON.stringify(value);
  return text.length > 400 ? text.slice(0, 400) + "…" : text;
}

function diffTable(older, newer) {
  const changes = diff(older.config, newer.config);
  if (!changes.length) return h("p", { class: "muted" }, `Versions ${older.version} and ${newer.version} have the same configuration.`);
  return h("div", {},
    h("p", {}, `${changes.length} change(s) from version ${older.version} to version ${newer.version}:`),
    h("table", { id: "version-diff" },
      h("thead", {}, h("tr", {}, ["Path", "Change", `Version ${older.version}`, `Version ${newer.version}`].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, changes.map((c) => h("tr", { class: `diff-${c.kind}`, dataset: { path: c.path, kind: c.kind } },
        h("td", {}, h("code", {}, c.path)),
        h("td", {}, h("span", { class: `badge diff-${c.kind}` }, c.kind)),
        h("td", { class: "mono diff-old" }, c.kind === "added" ? "—" : shown(c.old)),
        h("td", { class: "mono diff-new" }, c.kind === "removed" ? "—" : `→ ${shown(c.new)}`))))));
}

// ====================================================================== versions

async function versionsPage(connector) {
  const id = connector.id;
  const list = h("div", { id: "versions-list" });
  const compare = h("section", { class: "card", "aria-labelledby": "compare-title" });
  const result = h("div", { id: "version-compare", "aria-live": "polite" });
  let current = connector.version;
  let items = [];

  async function load() {
    const [latest, versions] = await Promise.all([api.get(`/connectors/${id}`), api.get(`/connectors/${id}/versions`)]);
    current = latest.version;
    items = versions.items;
    drawList();
    drawCompare();
  }

  function option(v) { return h("option", { value: v.version }, `version ${v.version} · ${fmtTime(v.saved_at)}${v.version === current ? " (current)" : ""}`); }

  function drawCompare() {
    if (items.length < 2) {
      compare.replaceChildren(h("h2", { id: "compare-title" }, "What changed"),
        h("p", { class: "muted" }, "Only one version is kept so far: save the configuration to compare two."));
      return;
    }
    const from = h("select", { id: "compare-from", name: "from" }, items.map(option));
    const to = h("select", { id: "compare-to", name: "to" }, items.map(option));
    from.value = String(items[1].version);
    to.value = String(items[0].version);
    const draw = () => {
      const a = items.find((v) => String(v.version) === from.value);
      const b = items.find((v) => String(v.version) === to.value);
      result.replaceChildren(diffTable(a, b));
    };
    from.addEventListener("change", draw);
    to.addEventListener("change", draw);
    compare.replaceChildren(h("h2", { id: "compare-title" }, "What changed"),
      h("div", { class: "row" },
        h("div", {}, h("label", { for: "compare-from" }, "From"), from),
        h("div", {}, h("label", { for: "compare-to" }, "To"), to)),
      result);
    draw();
  }

  async function restore(v) {
    const ok = await confirmDialog(`Restore version ${v.version}?`,
      `Its configuration is saved as a new version (${current + 1}); the versions in between are kept.`, { okLabel: "Restore" });
    if (!ok) return;
    try {
      const saved = await api.post(`/connectors/${id}/versions/${v.version}/restore`);
      toast(`Version ${v.version} restored as version ${saved.version}`);
      await load();
    } catch (err) {
      toast(err.status === 409 ? `${err.message} (the list is reloaded)` : err.message, true);
      if (err.status === 409 || err.status === 404) await load().catch(() => {});
    }
  }

  function drawList() {
    list.replaceChildren(h("table", { id: "versions" },
      h("caption", { class: "muted" }, `The last ${items.length} kept version(s), newest first`),
      h("thead", {}, h("tr", {}, ["Version", "Saved", "Steps", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((v) => h("tr", { dataset: { version: v.version } },
        h("td", {}, `${v.version} `, v.version === current ? h("span", { class: "badge succeeded" }, "current") : null),
        h("td", {}, time(v.saved_at)),
        h("td", {}, String((v.config.steps || []).length)),
        h("td", {}, h("details", {}, h("summary", {}, "configuration"), h("pre", {}, JSON.stringify(v.config, null, 2))),
          v.version === current ? null : h("button", {
            type: "button", class: "secondary shrink restore", dataset: { version: v.version },
            "aria-label": `Restore version ${v.version}`, onclick: () => restore(v),
          }, "Restore")))))));
  }

  await load();
  return h("div", { id: "versions-page" }, back(connector),
    h("h1", {}, `${connector.name}: versions`),
    compare,
    h("section", { class: "card", "aria-label": "Kept versions" }, list));
}

export async function render(view, connectorId) {
  leave();
  const connector = await api.get(`/connectors/${connectorId}`);
  return view === "stats" ? statsPage(connector) : versionsPage(connector);
}

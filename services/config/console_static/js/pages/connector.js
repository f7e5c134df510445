// One connector: Pause / Resume, its connecting URL (copy, rotate, an example with custom
// variables), and its settings as tabs (Map Response, Field Mapping, JSON structure,
// Steps, who may send, retention and alerts), with the event log beside them.
//
// Every save PUTs the whole configuration ({version, config}) to /api/v1/connectors/{id}:
// the latest is read first and only this section's keys are replaced, so what another
// section (or another person) saved is kept. When the latest version changed this very
// section since the page loaded, or the PUT answers 409, the page reloads and says so.
// A 422's problems are shown at their fields: each field's wrapper carries the API's
// problem path in data-path ("$.response.status", "$.config.verification.secrets[0]").
import { api } from "../api.js";
import { confirmDialog, fmtTime, h, json, showProblems, tabs, toast, uid } from "../ui.js";
import { leave as leaveLog, renderLog } from "./events.js";
import { stepsEditor } from "./steps.js";

const SCHEMES = ["standard", "github", "stripe", "shopify", "slack", "twilio", "meta", "zoom",
  "hubspot", "mailgun", "hmac", "basic", "api_key"];
const HANDSHAKES = ["meta", "slack", "zoom", "graph", "dropbox", "okta", "twitter"];
// What each scheme reads besides its secrets (README: "Source verification").
const SCHEME_OPTIONS = {
  standard: ["tolerance_s"], github: [], stripe: ["tolerance_s"], shopify: [],
  slack: ["tolerance_s"], twilio: [], meta: [], zoom: ["tolerance_s"], hubspot: ["tolerance_s"],
  mailgun: ["tolerance_s"],
  hmac: ["header", "algorithm", "encoding", "prefix", "signed", "timestamp_header", "id_header", "tolerance_s"],
  basic: ["username"], api_key: ["header", "query_param"],
};
const SECRET_LABELS = {
  standard: ["Signing secret", "whsec_… (HMAC) or whpk_… (ed25519 public key)"],
  github: ["Webhook secret", "the secret set on the GitHub webhook"],
  stripe: ["Endpoint signing secret", "whsec_… from the Stripe dashboard"],
  shopify: ["App client secret", "signs X-Shopify-Hmac-Sha256"],
  slack: ["Signing secret", "from the Slack app's Basic Information"],
  twilio: ["Auth token", "the account's auth token; set HOOKLINE_PUBLIC_URL to the URL Twilio calls"],
  meta: ["App secret", "signs X-Hub-Signature-256"],
  zoom: ["Secret token", "from the Zoom app's feature page"],
  hubspot: ["Client secret", "the app's client secret"],
  mailgun: ["HTTP webhook signing key", "Mailgun's signature does not cover the event data"],
  hmac: ["Secret", "the HMAC key"],
  basic: ["Password", "one of the accepted passwords"],
  api_key: ["API key", "one of the accepted keys"],
};
const ATTRIBUTE_KINDS = [["event", "Event attributes"], ["system", "System attributes"],
  ["subscriber", "Subscriber attributes"], ["formatter", "Formatter"]];
const NOT_EVENTS = new Set(["rejected", "handshake"]);
const POLL_MS = 3000;

let timers = [];

export function leave() { timers.forEach(clearInterval); timers = []; leaveLog(); }

// ------------------------------------------------------------------ small helpers

function text(value) { return value === null || value === undefined ? "" : String(value); }
function orNull(input) { const v = input.value.trim(); return v ? v : null; }
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

// A labelled control; `path` goes on a wrapper (the control and its picker), so a
// problem lands after them. `paths` (more than one) nests wrappers, outermost first.
function labelled(label, control, { path, paths, help, picker } = {}) {
  if (!control.id) control.id = uid("field");
  let inner = picker ? h("span", { class: "with-picker" }, control, picker) : control;
  for (const p of [...(paths || (path ? [path] : []))].reverse()) {
    inner = h("span", { class: "at-path", "data-path": p }, inner);
  }
  const helpId = help ? uid("help") : null;
  if (helpId) control.setAttribute("aria-describedby", helpId);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), inner,
    help ? h("div", { class: "muted", id: helpId }, help) : null);
}

function input(id, value, attrs = {}) {
  return h("input", { id, name: id, type: "text", value: text(value), autocomplete: "off", spellcheck: "false", ...attrs });
}

function select(id, options, value) {
  return h("select", { id, name: id }, options.map(([v, label]) =>
    h("option", { value: v, selected: String(v) === String(value ?? "") }, label)));
}

// Problems at their fields: the API names a configuration field "$.response.status"
// (validation) or "$.config.response.status" (the body's decoding); a field carries
// one of them, so each problem goes to whichever of the two the page has.
function problemsAt(root, problems) {
  const has = (p) => root.querySelector(`[data-path="${CSS.escape(p)}"]`) !== null;
  const placed = (problems || []).map((p) => {
    if (has(p.path)) return p;
    const other = p.path.startsWith("$.config.") ? "$." + p.path.slice(9)
      : p.path.startsWith("$.") ? "$.config." + p.path.slice(2) : null;
    return other && has(other) ? { ...p, path: other } : p;
  });
  showProblems(root, placed);
  const first = root.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}

async function copy(inputEl) {
  const value = inputEl.value;
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard API");
    // A browser may leave the promise pending (a permission it never asks for): give up soon.
    await Promise.race([navigator.clipboard.writeText(value),
      new Promise((_, reject) => setTimeout(() => reject(new Error("clipboard timed out")), 1500))]);
    toast("Copied");
    return;
  } catch {
    // Denied or unavailable: the older way, from the selected text.
  }
  inputEl.focus();
  inputEl.select();
  let done = false;
  try { done = document.execCommand("copy"); } catch { done = false; }
  toast(done ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy", !done);
}

function copyButton(target, id, label) {
  return h("button", { type: "button", class: "secondary shrink", id, "aria-label": label, onclick: () => copy(target) }, "Copy");
}

// ------------------------------------------------------------------ attribute picker

// Opens a dialog listing the connector's attributes by kind; picking inserts the path:
// a template field gets "{{ path }}" at the cursor, a path field the path itself
// (or "{{ path }}" at the cursor when it already holds a template).
async function pickAttribute(connectorId, target, { template, label }) {
  let attrs;
  try { attrs = await api.get(`/connectors/${connectorId}/attributes`); } catch (err) { toast(err.message, true); return; }
  const titleId = uid("picker-title");
  const filterId = uid("picker-filter");
  const filter = h("input", { id: filterId, type: "search", autocomplete: "off", placeholder: "body.customer" });
  const dialog = h("dialog", { class: "attr-picker", "aria-labelledby": titleId });
  function insert(path) {
    if (template || target.value.includes("{{")) {
      const start = target.selectionStart ?? target.value.length;
      const end = target.selectionEnd ?? start;
      target.setRangeText(`{{ ${path} }}`, start, end, "end");
    } else {
      target.value = path;
    }
    target.dispatchEvent(new Event("input", { bubbles: true }));
    dialog.close();
    target.focus();
  }
  const groups = ATTRIBUTE_KINDS.map(([kind, title]) => {
    const items = attrs[kind] || [];
    return h("section", { class: "attr-group", dataset: { kind } },
      h("h3", {}, title),
      items.length ? h("ul", {}, items.map((a) => h("li", { dataset: { search: a.path.toLowerCase() } },
        h("button", { type: "button", class: "link attr", dataset: { attribute: a.path }, onclick: () => insert(a.path) },
          h("code", {}, a.path)),
        " ", h("span", { class: "muted" }, [a.type, a.label, a.example !== undefined && a.example !== null ? `e.g. ${JSON.stringify(a.example)}` : null]
          .filter(Boolean).join(" · ")))))
        : h("p", { class: "muted" }, kind === "event" ? "None yet: send an event first." : "None."));
  });
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    dialog.querySelectorAll("li[data-search]").forEach((li) => { li.hidden = Boolean(needle) && !li.dataset.search.includes(needle); });
  });
  dialog.append(
    h("h2", { id: titleId }, `Insert an attribute into ${label}`),
    h("label", { for: filterId }, "Filter"), filter,
    h("div", { class: "attr-groups" }, groups),
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary shrink", onclick: () => dialog.close() }, "Close")));
  document.body.append(dialog);
  dialog.addEventListener("close", () => { dialog.remove(); target.focus(); });
  dialog.showModal();
  filter.focus();
}

function picker(ctx, target, label, template = false) {
  return h("button", {
    type: "button", class: "secondary shrink picker", "aria-haspopup": "dialog",
    "aria-label": `Insert an attribute into ${label}`, title: "Insert an attribute",
    dataset: { pickerFor: target.id },
    onclick: () => pickAttribute(ctx.id, target, { template, label }),
  }, "</>");
}

// ------------------------------------------------------------------ saving

// PUT the whole configuration: the latest one with `patch` applied; `keys` are the
// config keys this section owns (checked for a change made elsewhere meanwhile).
async function saveConfig(ctx, root, keys, patch) {
  let latest;
  try { latest = await api.get(`/connectors/${ctx.id}`); } catch (err) { toast(err.message, true); return null; }
  if (latest.version !== ctx.connector.version && keys.some((k) => !same(latest.config[k], ctx.connector.config[k]))) {
    toast(`Version ${latest.version} was saved meanwhile and changed these settings: reloaded, make your change again`, true);
    await ctx.reload();
    return null;
  }
  try {
    const saved = await api.put(`/connectors/${ctx.id}`, { version: latest.version, config: { ...latest.config, ...patch } });
    ctx.connector = saved;
    showProblems(root, []);
    const where = document.getElementById("connector-version");
    if (where) where.textContent = ` · version ${saved.version}, saved ${fmtTime(saved.updated_at)}`;
    toast(`Saved version ${saved.version}`);
    return saved;
  } catch (err) {
    if (err.status === 409) {
      toast(`Someone saved meanwhile (${err.message}): reloaded, make your change again`, true);
      await ctx.reload();
    } else if (err.status === 422) {
      problemsAt(root, err.problems.length ? err.problems : [{ path: "$.config", message: err.message }]);
      toast(err.message, true);
    } else {
      toast(err.message, true);
    }
    return null;
  }
}

function saveButton(id, label, onClick) {
  const button = h("button", { type: "button", id, class: "shrink" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try { await onClick(); } finally { button.disabled = false; }
  });
  return button;
}

// ------------------------------------------------------------------ 1, 2: the URL

function urlSection(ctx) {
  const url = h("input", { id: "connector-url", type: "text", readonly: true, value: ctx.connector.url, "aria-label": "Connecting URL" });
  const name = input("example-name", "value", { "aria-describedby": "example-help" });
  const value = input("example-value", "day1");
  const example = h("input", { id: "example-url", type: "text", readonly: true, "aria-label": "Example URL" });
  function update() {
    const key = name.value.trim();
    example.value = key ? `${url.value}?${encodeURIComponent(key)}=${encodeURIComponent(value.value)}` : url.value;
  }
  name.addEventListener("input", update);
  value.addEventListener("input", update);
  update();

  async function rotate() {
    const grace = h("input", { id: "grace-seconds", type: "number", min: 0, max: 604800, step: 1, value: "0", "aria-describedby": "grace-help" });
    const extra = h("div", {},
      h("label", { for: "grace-seconds" }, "Grace period (seconds)"), grace,
      h("div", { class: "muted", id: "grace-help" }, "How long the old URL keeps working: 0 ends it at once; at most 604800 (7 days)."));
    const ok = await confirmDialog("Generate a new URL?",
      "The connector gets a new secret URL; update it in the app that sends the webhooks.",
      { okLabel: "Generate new URL", extra });
    if (!ok) return;
    const seconds = Number(grace.value || 0);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 604800) {
      toast("The grace period is a whole number of seconds from 0 to 604800", true);
      return;
    }
    try {
      const rotated = await api.post(`/connectors/${ctx.id}/rotate-url`, { grace_seconds: seconds });
      ctx.connector = { ...ctx.connector, url: rotated.url };
      url.value = rotated.url;
      update();
      toast(seconds ? `New URL generated; the old one works for ${seconds} s more` : "New URL generated; the old one no longer works");
      url.focus();
    } catch (err) { toast(err.message, true); }
  }

  return [
    h("section", { class: "card", "aria-labelledby": "url-title" },
      h("h2", { id: "url-title" }, "Connecting URL"),
      h("p", { class: "muted" }, "Set it as the webhook (hook, callback URL, HTTP request) in the app that sends the events. Keep it private."),
      h("div", { class: "url" }, url, copyButton(url, "copy-url", "Copy the connecting URL"),
        h("button", { type: "button", class: "secondary shrink", id: "rotate-url", onclick: rotate }, "Generate New URL"))),
    h("section", { class: "card", "aria-labelledby": "example-title" },
      h("h2", { id: "example-title" }, "Passing custom variables"),
      h("p", { class: "muted", id: "example-help" }, "Values in the query string are the event's custom_variables (custom_variables.<name>), e.g. one URL for day 1, day 2 and day 3 messages with a filter each."),
      h("div", { class: "row fields" }, labelled("Variable name", name), labelled("Value", value)),
      h("label", { for: "example-url" }, "Example URL"),
      h("div", { class: "url" }, example, copyButton(example, "copy-example-url", "Copy the example URL"))),
  ];
}

// ------------------------------------------------------------------ 3: Map Response

async function latestEvent(ctx) {
  const { items } = await api.get(`/connectors/${ctx.id}/events?limit=20`);
  const summary = items.find((e) => !NOT_EVENTS.has(e.status));
  return summary ? api.get(`/connectors/${ctx.id}/events/${summary.event_id}`) : null;
}

function responseSection(ctx) {
  const r = ctx.connector.config.response;
  const status = input("response-status", r.status, { type: "number", min: 100, max: 599, step: 1, inputmode: "numeric" });
  const listId = uid("content-types");
  const contentType = input("response-content-type", r.content_type, { list: listId });
  const body = h("textarea", { id: "response-body", name: "response-body", rows: 6, spellcheck: "false" }, text(r.body));
  const preview = h("div", { id: "response-preview", "aria-live": "polite" });
  const root = h("div", { class: "section", id: "response-section" });

  async function save() {
    const n = Number(status.value);
    const response = {
      status: status.value.trim() !== "" && Number.isInteger(n) ? n : status.value,
      content_type: contentType.value.trim() || "application/json",
      body: body.value === "" ? null : body.value,
    };
    await saveConfig(ctx, root, ["response"], { response });
  }

  async function showPreview() {
    try {
      const e = await latestEvent(ctx);
      if (!e) { preview.replaceChildren(h("p", { class: "muted" }, "No event logged yet: send one, then preview.")); return; }
      const n = Number(status.value);
      const response = {
        status: Number.isInteger(n) && n >= 100 && n <= 599 ? n : 200,
        content_type: contentType.value.trim() || "application/json",
        body: body.value === "" ? null : body.value,
      };
      // The server renders it as ingest would (same templates, sandbox and bounds).
      const r = await api.post(`/connectors/${ctx.id}/events/${e.event_id}/response-preview`, { response });
      preview.replaceChildren(
        h("h3", {}, `Preview against event …${e.event_id.slice(-10)} (${fmtTime(e.received_at)})`),
        h("p", { class: "muted" }, `HTTP ${r.status}, Content-Type: ${r.content_type}`),
        r.error ? h("p", { class: "problem", role: "alert" }, `The template does not render: ${r.error}`) : null,
        h("pre", { id: "response-preview-body" }, r.body),
        h("details", {}, h("summary", {}, "The event's body and custom variables"),
          h("pre", {}, json({ body: e.event.body, custom_variables: e.event.custom_variables }))));
    } catch (err) { toast(err.message, true); }
  }

  root.append(
    h("p", { class: "muted" }, "What the sender is answered, for apps that need a particular response to accept the URL."),
    h("div", { class: "row fields" },
      labelled("Status", status, { path: "$.response.status", help: "100 to 599" }),
      labelled("Content type", contentType, { path: "$.response.content_type", help: "sent with a body below" })),
    h("datalist", { id: listId }, ["application/json", "text/plain", "text/html", "application/xml"].map((t) => h("option", { value: t }))),
    labelled("Body (template)", body, { path: "$.response.body", picker: picker(ctx, body, "the response body", true),
      help: "Plain text, HTML, JSON…; {{ body.field }} inserts a value. Empty: the default {\"event_id\": …, \"status\": \"stored\"}." }),
    h("div", { class: "row actions" }, saveButton("save-response", "Save", save),
      h("button", { type: "button", class: "secondary shrink", id: "preview-response", onclick: showPreview }, "Preview with the latest event")),
    preview);
  return root;
}

// ------------------------------------------------------------------ 4: Field Mapping

function mappingSection(ctx) {
  const m = ctx.connector.config.mapping || {};
  const root = h("div", { class: "section", id: "mapping-section" });
  const pathInput = (id, value, placeholder) => input(id, value, { placeholder });
  const mobile = pathInput("mapping-mobile", m.mobile, "body.customer.phone");
  const email = pathInput("mapping-email", m.email, "body.customer.email");
  const channelOptions = [["", "— none —"], ...ctx.channels.map((c) => [c.id, `${c.name || c.id} (${c.type}, ${c.id})`])];
  if (m.channel && !ctx.channels.some((c) => c.id === m.channel)) channelOptions.push([m.channel, `${m.channel} (unknown channel)`]);
  const channel = select("mapping-channel", channelOptions, m.channel);
  const channelFrom = pathInput("mapping-channel-from", m.channel_from, "custom_variables.channel");
  const name = pathInput("mapping-name", m.name, "body.customer.name");
  const owner = pathInput("mapping-owner-from", m.owner_from, "body.owner_email");
  const region = input("mapping-default-region", m.default_region || "US", { maxlength: 2, placeholder: "US" });
  const rows = h("div", { id: "mapping-attributes" });
  const attrNames = ctx.subscriberAttributes.map((a) => a.name);

  function attributeRow(key = "", value = "") {
    const names = attrNames.includes(key) || !key ? attrNames : [...attrNames, key];
    const nameSel = h("select", { id: uid("mapping-attr-name"), class: "mapping-attribute-name" },
      h("option", { value: "" }, "— attribute —"), names.map((n) => h("option", { value: n, selected: n === key }, n)));
    const val = input(uid("mapping-attr-value"), value, { class: "mapping-attribute-value", placeholder: "body.customer.city" });
    const at = h("span", { class: "at-path", "data-path": `$.mapping.attributes.${key}` }, h("span", { class: "with-picker" }, val, null));
    const label = () => `subscriber attribute ${nameSel.value || "(choose one)"}`;
    const pick = h("button", { type: "button", class: "secondary shrink picker", "aria-haspopup": "dialog", title: "Insert an attribute",
      "aria-label": `Insert an attribute into ${label()}`, dataset: { pickerFor: val.id },
      onclick: () => pickAttribute(ctx.id, val, { template: false, label: label() }) }, "</>");
    at.firstChild.append(pick);
    nameSel.addEventListener("change", () => { at.dataset.path = `$.mapping.attributes.${nameSel.value}`; pick.setAttribute("aria-label", `Insert an attribute into ${label()}`); });
    const row = h("div", { class: "row mapping-attribute" },
      h("div", {}, h("label", { for: nameSel.id }, "Subscriber attribute"), nameSel),
      h("div", {}, h("label", { for: val.id }, "From"), at),
      h("button", { type: "button", class: "secondary shrink", "aria-label": "Remove this attribute", onclick: () => { row.remove(); addButton.focus(); } }, "Remove"));
    row.nameSel = nameSel;
    row.val = val;
    return row;
  }
  const addButton = h("button", { type: "button", class: "secondary shrink", id: "add-mapping-attribute", disabled: !attrNames.length,
    onclick: () => { const row = attributeRow(); rows.append(row); row.nameSel.focus(); } }, "Add more");
  for (const [k, v] of Object.entries(m.attributes || {})) rows.append(attributeRow(k, v));

  const then = h("fieldset", { class: "then" }, h("legend", {}, "Then"),
    h("div", { class: "row fields" },
      labelled("Name", name, { path: "$.mapping.name", picker: picker(ctx, name, "the name") }),
      labelled("Contact owner from (agent email)", owner, { path: "$.mapping.owner_from", picker: picker(ctx, owner, "the contact owner") }),
      labelled("Default region", region, { path: "$.mapping.default_region", help: "for numbers without a country code (ISO 3166, e.g. US, IN)" })),
    h("h3", {}, "Subscriber attributes"),
    attrNames.length ? null : h("p", { class: "muted" }, "No subscriber attributes are defined: add them on the ", h("a", { href: "#/attributes" }, "Attributes"), " page."),
    rows, addButton);
  const firstNote = h("p", { class: "muted", id: "mapping-first", "data-path": "$.mapping" });
  function gate() {
    const ready = Boolean((mobile.value.trim() || email.value.trim()) && (channel.value || channelFrom.value.trim()));
    then.disabled = !ready;
    firstNote.textContent = ready ? "Every event creates or updates the contact it names."
      : "Map the mobile number or the email, and the default channel, first: the other fields open then.";
  }
  for (const el of [mobile, email, channelFrom]) el.addEventListener("input", gate);
  channel.addEventListener("change", gate);
  gate();

  async function save() {
    const attributes = {};
    const seen = new Set();
    const dupes = [];
    for (const row of rows.querySelectorAll(".mapping-attribute")) {
      const key = row.nameSel.value;
      const value = row.val.value.trim();
      if (!key || !value) continue;
      if (seen.has(key)) dupes.push({ path: `$.mapping.attributes.${key}`, message: `${key} is mapped twice` });
      seen.add(key);
      attributes[key] = value;
    }
    if (dupes.length) { problemsAt(root, dupes); return; }
    const mapping = { mobile: orNull(mobile), email: orNull(email), channel: channel.value || null, channel_from: orNull(channelFrom),
      name: orNull(name), owner_from: orNull(owner), default_region: region.value.trim().toUpperCase() || "US", attributes };
    const empty = ["mobile", "email", "channel", "channel_from", "name", "owner_from"].every((k) => mapping[k] === null) && !seen.size;
    await saveConfig(ctx, root, ["mapping"], { mapping: empty ? null : mapping });
  }

  root.append(
    h("p", { class: "muted" }, "Creates or updates a contact from each event. Values are attribute paths (body.customer.email) or templates ({{ … }})."),
    firstNote,
    h("fieldset", {}, h("legend", {}, "First"),
      h("div", { class: "row fields" },
        labelled("Mobile number from", mobile, { path: "$.mapping.mobile", picker: picker(ctx, mobile, "the mobile number") }),
        labelled("Email from", email, { path: "$.mapping.email", picker: picker(ctx, email, "the email") })),
      h("div", { class: "row fields" },
        labelled("Default channel", channel, { path: "$.mapping.channel", help: ctx.channels.length ? null : "No channels yet: add one on the Channels page." }),
        labelled("Or the channel id from", channelFrom, { path: "$.mapping.channel_from", picker: picker(ctx, channelFrom, "the channel id"),
          help: "dynamic: an attribute holding a channel's unique id" }))),
    then,
    h("div", { class: "row actions" }, saveButton("save-mapping", "Save", save)));
  return root;
}

// ------------------------------------------------------------------ 5: JSON structure

function parentOf(path) {
  const m = path.match(/^(.*?)(\.[^.[\]]+|\[\d+\])$/);
  return m ? m[1] : null;
}

function designTree(fields) {
  const nodes = new Map(fields.map((f) => [f.path, { f, children: [] }]));
  const roots = [];
  for (const node of nodes.values()) {
    let p = parentOf(node.f.path);
    while (p && !nodes.has(p)) p = parentOf(p);
    (p ? nodes.get(p).children : roots).push(node);
  }
  const list = (items) => h("ul", {}, items.map(({ f, children }) => h("li", { dataset: { field: f.path } },
    h("code", {}, f.path), " ", h("span", { class: "badge" }, f.type),
    f.example !== null && f.example !== undefined ? [" ", h("span", { class: "muted" }, "e.g. ", JSON.stringify(f.example))] : null,
    children.length ? list(children) : null)));
  return list(roots);
}

function structureSection(ctx) {
  const root = h("div", { class: "section", id: "structure-section" });
  const treeBox = h("div", { class: "tree", id: "structure-tree", "aria-live": "polite" });
  const code = h("textarea", { id: "structure-code", rows: 16, spellcheck: "false", "data-path": "$.sample" });
  const codeNote = h("p", { class: "muted" });
  const warnings = h("div", { id: "structure-warnings", "aria-live": "polite" });
  const eventSelect = h("select", { id: "remap-event" });
  let dirty = false;
  let lastSeen = null;
  code.addEventListener("input", () => { dirty = true; });

  function show(s) {
    ctx.structure = s;
    if (!s) {
      treeBox.replaceChildren(h("p", { class: "muted" }, "No structure yet: it is learned from the first event received. Send one to the connecting URL (it appears in the log)."));
      codeNote.textContent = "Empty until the first event.";
    } else {
      treeBox.replaceChildren(
        h("p", { class: "muted" }, `${s.fields.length} fields`, s.from_event ? ` · mapped from event …${s.from_event.slice(-10)}` : "",
          s.updated_at ? ` · ${fmtTime(s.updated_at)}` : "", s.truncated ? " · cut short by a size bound" : ""),
        designTree(s.fields));
      codeNote.textContent = 'The event JSON the structure comes from: {"body": …, "custom_variables": {…}}. Editing it by hand is not recommended.';
    }
    if (!dirty) code.value = s ? json(s.sample) : "";
  }
  async function load() {
    try { show(await api.get(`/connectors/${ctx.id}/structure`)); } catch (err) { if (err.status === 404) show(null); else toast(err.message, true); }
  }
  function showWarnings(list) {
    warnings.replaceChildren(list.length
      ? h("div", { class: "problem", role: "alert" }, h("p", {}, `${list.length} reference(s) the new structure lacks; adjust them:`),
          h("ul", {}, list.map((w) => h("li", {}, h("code", {}, w.path), ": ", w.message))))
      : h("p", {}, "Every mapping and step reference still resolves."));
  }
  async function events() {
    const { items } = await api.get(`/connectors/${ctx.id}/events?limit=30`);
    const usable = items.filter((e) => !NOT_EVENTS.has(e.status));
    const chosen = eventSelect.value;
    const key = usable.map((e) => e.event_id).join();
    if (eventSelect.dataset.key !== key) {
      eventSelect.dataset.key = key;
      eventSelect.replaceChildren(...(usable.length ? usable.map((e) => h("option", { value: e.event_id, selected: e.event_id === chosen },
        `${fmtTime(e.received_at)} · ${e.status || "received"} · …${e.event_id.slice(-10)}`)) : [h("option", { value: "" }, "no event logged yet")]));
    }
    const newest = usable.length ? usable[0].event_id : null;
    if (newest !== lastSeen) { lastSeen = newest; if (!ctx.structure || !dirty) await load(); }
  }
  async function saveCode() {
    let sample;
    try { sample = JSON.parse(code.value); } catch (err) { problemsAt(root, [{ path: "$.sample", message: `not valid JSON: ${err.message}` }]); return; }
    try {
      const s = await api.put(`/connectors/${ctx.id}/structure`, { sample });
      dirty = false;
      showProblems(root, []);
      show(s);
      showWarnings(s.warnings || []);
      toast("Structure saved");
    } catch (err) {
      problemsAt(root, err.problems.length ? err.problems : [{ path: "$.sample", message: err.message }]);
    }
  }
  async function remap() {
    const eventId = eventSelect.value;
    if (!eventId) { toast("No event to map from yet", true); return; }
    const ok = await confirmDialog("Map the structure from this event?",
      "The structure is replaced by this event's. If it differs, steps and mappings that refer to fields it lacks stop resolving: the warnings list them.",
      { okLabel: "Map from this event" });
    if (!ok) return;
    try {
      const s = await api.post(`/connectors/${ctx.id}/structure/from-event/${encodeURIComponent(eventId)}`);
      dirty = false;
      show(s);
      showWarnings(s.warnings || []);
      toast("Structure mapped from the event");
    } catch (err) { toast(err.message, true); }
  }

  const codePanel = h("div", {},
    h("label", { for: "structure-code" }, "Code (JSON)"), code, codeNote,
    h("div", { class: "row actions" }, saveButton("save-structure", "Save structure", saveCode)));
  root.append(
    h("p", { class: "muted" }, "Which fields events carry: learned from the first event; pickers and checks use it."),
    tabs([{ id: "structure-design", label: "Design", render: () => treeBox }, { id: "structure-code-tab", label: "Code", render: () => codePanel }]),
    h("h3", {}, "Map from a logged event"),
    h("div", { class: "row" }, labelled("Event", eventSelect),
      h("button", { type: "button", class: "secondary shrink", id: "remap-from-event", onclick: remap }, "Map from this event"),
      h("button", { type: "button", class: "secondary shrink", id: "refresh-structure", onclick: () => { dirty = false; load(); } }, "Reload")),
    warnings);
  show(ctx.structure);
  events().catch(() => {});
  timers.push(setInterval(() => events().catch(() => {}), POLL_MS));
  return root;
}

// ------------------------------------------------------------------ 6: Steps

function stepsSection(ctx) {
  const root = h("div", { class: "section", id: "steps-section" });
  const editor = stepsEditor(ctx.connector.config.steps || [], { attributes: ctx.attributes });
  async function save() {
    let steps;
    try { steps = editor.value(); } catch (err) { problemsAt(root, [{ path: "$.config.steps", message: err.message }]); return; }
    await saveConfig(ctx, root, ["steps"], { steps });
  }
  root.append(editor.node, h("div", { class: "row actions" }, saveButton("save-steps", "Save steps", save)));
  return root;
}

// ------------------------------------------------------------------ 7: who may send

function verificationSection(ctx) {
  const root = h("div", { class: "section", id: "verification-section" });
  function build(config) {
    const v = config.verification || {};
    const hs = config.handshake || {};
    const scheme = select("verification-scheme", [["", "none: anyone with the URL"], ...SCHEMES.map((s) => [s, s])], v.scheme);
    const secrets = [0, 1].map((k) => input(`verification-secret-${k}`, (v.secrets || [])[k], { class: "secret" }));
    const secretFields = secrets.map((el, k) => labelled(k ? "Next secret (optional, during a rotation)" : "Secret", el, {
      paths: [`$.config.verification.secrets[${k}]`, `$.verification.secrets[${k}]`],
      help: k ? "Both are accepted while the sender moves to the new one; then remove the old." : "Write-only: shown as … and its last 4 characters; leave it so to keep it." }));
    const secretLabels = secretFields.map((f) => f.querySelector("label"));
    const secretsHelp = h("p", { class: "muted", id: "verification-secret-help" });
    const opt = {
      tolerance_s: input("verification-tolerance", v.tolerance_s ?? 300, { type: "number", min: 1, max: 86400, step: 1 }),
      header: input("verification-header", v.header, { placeholder: "X-Signature" }),
      algorithm: select("verification-algorithm", [["sha256", "SHA-256"], ["sha1", "SHA-1"], ["sha512", "SHA-512"]], v.algorithm || "sha256"),
      encoding: select("verification-encoding", [["hex", "hex"], ["base64", "base64"]], v.encoding || "hex"),
      prefix: input("verification-prefix", v.prefix, { placeholder: "sha256=" }),
      signed: input("verification-signed", v.signed ?? "{body}"),
      timestamp_header: input("verification-timestamp-header", v.timestamp_header),
      id_header: input("verification-id-header", v.id_header),
      username: input("verification-username", v.username),
      query_param: input("verification-query-param", v.query_param),
    };
    const optLabels = {
      tolerance_s: ["Timestamp tolerance (seconds)", "signed timestamps further from now are refused (1 to 86400)"],
      header: ["Header", "the header holding the signature (hmac) or the key (api_key)"],
      algorithm: ["Algorithm"], encoding: ["Encoding"], prefix: ["Signature prefix", "e.g. sha256="],
      signed: ["Signed content", "a template of {body}, {timestamp}, {url}, {method}, {id}"],
      timestamp_header: ["Timestamp header", "needed when the signed content uses {timestamp}"],
      id_header: ["Message id header", "its value de-duplicates re-sends"],
      username: ["Username"], query_param: ["Or the query parameter", "api_key reads exactly one of header or query parameter"],
    };
    const optFields = Object.fromEntries(Object.entries(opt).map(([k, el]) =>
      [k, labelled(optLabels[k][0], el, { path: `$.verification.${k}`, help: optLabels[k][1] })]));
    const secretsBox = h("div", { class: "secrets", "data-path": "$.verification.secrets" }, secretsHelp, secretFields);

    const ipList = h("div", { id: "allowed-ips", "data-path": "$.allowed_ips" });
    function ipRow(value = "") {
      const el = input(uid("allowed-ip"), value, { class: "allowed-ip", placeholder: "203.0.113.0/24" });
      const row = h("div", { class: "row allowed-ip-row" }, labelled("Address or network", el),
        h("button", { type: "button", class: "secondary shrink", "aria-label": `Remove ${value || "this address"}`, onclick: () => { row.remove(); renumber(); addIp.focus(); } }, "Remove"));
      return row;
    }
    function renumber() {
      ipList.querySelectorAll(".allowed-ip-row").forEach((row, k) => {
        const wrap = row.querySelector(".field");
        let at = wrap.querySelector(".at-path");
        if (!at) { at = h("span", { class: "at-path" }); const el = wrap.querySelector("input"); el.replaceWith(at); at.append(el); }
        at.dataset.path = `$.allowed_ips[${k}]`;
      });
    }
    const addIp = h("button", { type: "button", class: "secondary shrink", id: "add-allowed-ip",
      onclick: () => { const row = ipRow(); ipList.append(row); renumber(); row.querySelector("input").focus(); } }, "Add an address");
    for (const ip of config.allowed_ips || []) ipList.append(ipRow(ip));
    renumber();

    const kind = select("handshake-kind", [["", "none"], ...HANDSHAKES.map((k) => [k, k])], hs.kind);
    const verifyToken = input("handshake-verify-token", hs.verify_token);
    const hsSecret = input("handshake-secret", hs.secret);
    const verifyField = labelled("Verify token", verifyToken, { paths: ["$.config.handshake.verify_token", "$.handshake.verify_token"],
      help: "the token set at Meta (write-only, shown redacted)" });
    const secretField = labelled("Handshake secret", hsSecret, { paths: ["$.config.handshake.secret", "$.handshake.secret"],
      help: "Zoom's secret token or X's consumer secret; empty: the verification's first secret (write-only)" });

    function refresh() {
      const s = scheme.value;
      const wanted = new Set(s ? SCHEME_OPTIONS[s] : []);
      for (const [k, f] of Object.entries(optFields)) f.hidden = !wanted.has(k);
      secretsBox.hidden = !s;
      const [label, help] = SECRET_LABELS[s] || ["Secret", ""];
      secretLabels[0].textContent = label;
      secretLabels[1].textContent = `Next ${label.toLowerCase()} (optional, during a rotation)`;
      secretsHelp.textContent = help;
      verifyField.hidden = kind.value !== "meta";
      secretField.hidden = !["zoom", "twitter"].includes(kind.value);
    }
    scheme.addEventListener("change", refresh);
    kind.addEventListener("change", refresh);
    refresh();

    async function save() {
      const s = scheme.value;
      let verification = null;
      if (s) {
        verification = { scheme: s, secrets: secrets.map((el) => el.value.trim()).filter(Boolean) };
        for (const k of SCHEME_OPTIONS[s]) {
          const el = opt[k];
          if (k === "tolerance_s") { const n = Number(el.value); verification[k] = el.value.trim() !== "" && Number.isInteger(n) ? n : el.value; }
          else if (k === "algorithm" || k === "encoding") verification[k] = el.value;
          else if (k === "prefix") verification[k] = el.value.trim();
          else if (k === "signed") verification[k] = el.value.trim() || "{body}";
          else verification[k] = orNull(el);
        }
      }
      const allowed_ips = [...ipList.querySelectorAll("input.allowed-ip")].map((el) => el.value.trim()).filter(Boolean);
      let handshake = null;
      if (kind.value) {
        handshake = { kind: kind.value };
        if (kind.value === "meta") handshake.verify_token = orNull(verifyToken);
        if (["zoom", "twitter"].includes(kind.value)) handshake.secret = orNull(hsSecret);
      }
      const saved = await saveConfig(ctx, root, ["verification", "allowed_ips", "handshake"], { verification, allowed_ips, handshake });
      if (saved) { build(saved.config); document.getElementById("verification-scheme")?.focus(); }
    }

    root.replaceChildren(
      h("p", { class: "muted" }, "Who may send: the sender's signature on the exact bytes, the addresses it sends from, and the subscription check some providers make first."),
      h("fieldset", {}, h("legend", {}, "Signature"),
        labelled("Scheme", scheme, { path: "$.verification.scheme" }), secretsBox,
        h("div", { class: "row fields" }, Object.values(optFields))),
      h("fieldset", {}, h("legend", {}, "Allowed addresses"),
        h("p", { class: "muted" }, "Empty: any address. Others get 403 address_not_allowed."), ipList, addIp),
      h("fieldset", {}, h("legend", {}, "Handshake"),
        labelled("Kind", kind, { path: "$.handshake.kind" }), verifyField, secretField),
      h("div", { class: "row actions" }, saveButton("save-verification", "Save", save)));
  }
  build(ctx.connector.config);
  return root;
}

// ------------------------------------------------------------------ 8: retention and alerts

const ALERT_CHANNEL_TYPES = new Set(["email", "http"]);

// A number input's value as a number; what it holds otherwise (the API says what is wrong).
function numberOf(el) { const v = el.value.trim(); const n = Number(v); return v !== "" && Number.isFinite(n) ? n : v; }

function operationsSection(ctx) {
  const root = h("div", { class: "section", id: "operations-section" });
  function build(config) {
    const a = config.alerts || {};
    const retention = input("retention-days", config.retention_days, { type: "number", min: 0, max: 3650, step: "any", inputmode: "decimal", placeholder: "30" });
    const usable = ctx.channels.filter((c) => ALERT_CHANNEL_TYPES.has(c.type));
    const options = [["", "— no alerts —"], ...usable.map((c) => [c.id, `${c.name || c.id} (${c.type}, ${c.id})`])];
    if (a.channel && !usable.some((c) => c.id === a.channel)) options.push([a.channel, `${a.channel} (unknown or not an email/HTTP channel)`]);
    const channel = select("alerts-channel", options, a.channel);
    const to = input("alerts-to", a.to, { type: "text", placeholder: "ops@example.com" });
    const path = input("alerts-path", a.path, { placeholder: "/hooks/alerts" });
    const onDead = h("input", { id: "alerts-on-dead-letter", name: "alerts-on-dead-letter", type: "checkbox", checked: a.on_dead_letter ?? true });
    const ratio = input("alerts-failure-ratio", a.failure_ratio, { type: "number", min: 0, max: 1, step: "any", inputmode: "decimal", placeholder: "0.5" });
    const minEvents = input("alerts-min-events", a.min_events ?? 10, { type: "number", min: 1, max: 1000000, step: 1, inputmode: "numeric" });
    const windowS = input("alerts-window", a.window_s ?? 300, { type: "number", min: 10, max: 604800, step: "any", inputmode: "numeric" });
    const toField = labelled("Send to", to, { path: "$.alerts.to", help: "an email channel's recipients, comma-separated" });
    const pathField = labelled("Path", path, { path: "$.alerts.path", help: "an HTTP channel: posted to its base URL + this path" });
    const details = h("div", { id: "alerts-details" },
      h("div", { class: "row fields" }, toField, pathField),
      h("div", { class: "field check" }, h("span", { class: "at-path", "data-path": "$.alerts.on_dead_letter" }, onDead),
        h("label", { for: onDead.id }, "When an event is dead-lettered")),
      h("div", { class: "row fields" },
        labelled("Failure ratio", ratio, { path: "$.alerts.failure_ratio", help: "0 to 1 (0.5: half the events of a window failed); empty: off" }),
        labelled("At least (events)", minEvents, { path: "$.alerts.min_events", help: "in the window, before the ratio counts" }),
        labelled("Window (seconds)", windowS, { path: "$.alerts.window_s", help: "10 to 604800; at most one alert per window" })));
    const typeOf = () => (ctx.channels.find((c) => c.id === channel.value) || {}).type;
    function refresh() {
      const type = typeOf();
      details.hidden = !channel.value;
      toField.hidden = type !== undefined && type !== "email";
      pathField.hidden = type !== undefined && type !== "http";
    }
    channel.addEventListener("change", refresh);
    refresh();

    async function save() {
      const retention_days = retention.value.trim() === "" ? null : numberOf(retention);
      let alerts = null;
      if (channel.value) {
        const type = typeOf();
        alerts = { channel: channel.value, on_dead_letter: onDead.checked,
          failure_ratio: ratio.value.trim() === "" ? null : numberOf(ratio),
          min_events: minEvents.value.trim() === "" ? 10 : numberOf(minEvents),
          window_s: windowS.value.trim() === "" ? 300 : numberOf(windowS) };
        if (type !== "http") alerts.to = orNull(to);
        if (type !== "email") alerts.path = path.value.trim();
        if (type === "email" && !alerts.to) {
          problemsAt(root, [{ path: "$.alerts.to", message: "an email alert needs who it goes to" }]);
          return;
        }
      }
      const saved = await saveConfig(ctx, root, ["retention_days", "alerts"], { retention_days, alerts });
      if (saved) { build(saved.config); document.getElementById("retention-days")?.focus(); }
    }

    root.replaceChildren(
      h("fieldset", {}, h("legend", {}, "Log retention"),
        labelled("Keep the log (days)", retention, { path: "$.retention_days",
          help: "More than 0, at most 3650. Empty: the deployment's default (HOOKLINE_LOG_RETENTION_DAYS, 30 days unless set). Applies to events received after the change." })),
      h("fieldset", { "data-path": "$.alerts" }, h("legend", {}, "Alerts to the operator"),
        h("p", { class: "muted" }, "Notify through an email or HTTP channel when, within a window, an event is dead-lettered or the share of failed events reaches the ratio."),
        labelled("Channel", channel, { path: "$.alerts.channel",
          help: usable.length ? null : "No email or HTTP channel yet: add one on the Channels page." }),
        details),
      h("div", { class: "row actions" }, saveButton("save-operations", "Save", save)));
  }
  build(ctx.connector.config);
  return root;
}

// ------------------------------------------------------------------ pause / resume

function pauseSection(ctx) {
  // The badge is in the h1 only while paused (the page's title is the h1's text).
  const badge = h("span", { id: "paused-slot" });
  const note = h("p", { id: "pause-note" });
  const button = h("button", { type: "button", id: "pause-toggle", class: "shrink" });
  const node = h("section", { class: "card row", id: "pause-section", "aria-label": "Pause or resume", "aria-live": "polite" }, note, button);
  let held = null;
  function draw() {
    const paused = Boolean(ctx.connector.paused);
    badge.replaceChildren(...(paused ? [h("span", { id: "paused-badge", class: "badge paused" }, "Paused")] : []));
    button.textContent = paused ? "Resume" : "Pause";
    button.className = paused ? "shrink" : "secondary shrink";
    button.setAttribute("aria-describedby", "pause-note");
    note.replaceChildren(...(paused
      ? [h("strong", {}, "Paused: "), "events are still stored and answered (2xx), and mapped; their steps wait until you resume, then run in arrival order.",
          held === null ? "" : ` ${held} ${held === 1 ? "event is" : "events are"} held.`]
      : [h("strong", {}, "Running: "), "each event's steps run as it arrives. Pause to hold them (during a downstream outage, say) without losing any."]));
  }
  async function poll() {
    if (!ctx.connector.paused) return;
    const stats = await api.get(`/connectors/${ctx.id}/stats`);
    held = stats.held;
    draw();
  }
  button.addEventListener("click", async () => {
    const action = ctx.connector.paused ? "resume" : "pause";
    button.disabled = true;
    try {
      const updated = await api.post(`/connectors/${ctx.id}/${action}`);
      // Only `paused`: the version the page loaded stays the base of its saves.
      ctx.connector = { ...ctx.connector, paused: updated.paused };
      held = null;
      draw();
      toast(updated.paused ? "Paused: events are stored and answered; their steps wait" : "Resumed: the held events run now, in arrival order");
      await poll();
    } catch (err) { toast(err.message, true); } finally { button.disabled = false; }
  });
  draw();
  poll().catch(() => {});
  timers.push(setInterval(() => poll().catch(() => {}), POLL_MS));
  return { badge, node };
}

// ------------------------------------------------------------------ the page

export async function render(view, connectorId) {
  const page = h("div", { id: "connector-page" });
  const ctx = { id: connectorId, reload: () => fill(page, ctx) };
  await fill(page, ctx);
  return page;
}

async function fill(page, ctx) {
  leave();
  const [connector, channels, subscriber, attributes, structure] = await Promise.all([
    api.get(`/connectors/${ctx.id}`),
    api.get("/channels").then((r) => r.items).catch(() => []),
    api.get("/attributes").then((r) => r.items).catch(() => []),
    api.get(`/connectors/${ctx.id}/attributes`).catch(() => null),
    api.get(`/connectors/${ctx.id}/structure`).catch((err) => { if (err.status === 404) return null; throw err; }),
  ]);
  Object.assign(ctx, { connector, channels, subscriberAttributes: subscriber, attributes, structure });
  const c = connector;
  const open = page.querySelector("#settings-tabs [role=tab][aria-selected=true]");
  const settings = tabs([
    { id: "response", label: "Map Response", render: once(() => responseSection(ctx)) },
    { id: "mapping", label: "Field Mapping", render: once(() => mappingSection(ctx)) },
    { id: "structure", label: "JSON structure", render: once(() => structureSection(ctx)) },
    { id: "steps", label: "Steps", render: once(() => stepsSection(ctx)) },
    { id: "verification", label: "Verification", render: once(() => verificationSection(ctx)) },
    { id: "operations", label: "Retention and alerts", render: once(() => operationsSection(ctx)) },
  ], open && !open.id.startsWith("tab-structure-") ? open.id.slice(4) : undefined);
  const pause = pauseSection(ctx);
  page.replaceChildren(
    h("p", {}, h("a", { href: "#/connectors" }, "← Connectors")),
    h("h1", {}, c.name, pause.badge),
    h("p", {}, h("a", { href: `#/connectors/${c.id}/stats`, id: "link-stats" }, "Stats"), " · ",
      h("a", { href: `#/connectors/${c.id}/versions`, id: "link-versions" }, "Versions"),
      h("span", { class: "muted", id: "connector-version" }, ` · version ${c.version}, saved ${fmtTime(c.updated_at)}`)),
    pause.node,
    h("div", { class: "split" },
      h("div", {}, urlSection(ctx),
        h("section", { class: "card", "aria-labelledby": "settings-title" }, h("h2", { id: "settings-title" }, "Settings"),
          h("div", { id: "settings-tabs" }, settings))),
      renderLog(c.id)));
}

// A tab's panel built once and kept, so what was typed survives switching tabs.
function once(build) {
  let node = null;
  return () => { node = node || build(); return node; };
}

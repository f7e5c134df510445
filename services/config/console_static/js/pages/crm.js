// The CRM's objects through the public API: channels (list, add, edit, delete; secrets
// are never put in a visible field), subscriber attributes and agents (list, add,
// delete: the API has no update for them) and contacts (search, read: the pipeline
// writes them, the API has no edit or delete).
import { api } from "../api.js";
import { confirmDialog, field, fmtTime, h, showProblems, toast } from "../ui.js";

const TITLES = { channels: "Channels", attributes: "Subscriber attributes", agents: "Agents", contacts: "Contacts" };

function problemsOf(err, fallbackPath) {
  if (err.problems && err.problems.length) return err.problems;
  return [{ path: fallbackPath || "$", message: err.message }];
}

// A labelled input whose control carries the API's problem path.
function at(path, spec) {
  const wrap = field(spec);
  wrap.input.dataset.path = path;
  return wrap;
}

function cardTitle(id, text) { return h("h2", { id }, text); }

// ====================================================================== channels

const TYPES = [["email", "Email (SMTP)"], ["whatsapp", "WhatsApp (Cloud API)"], ["http", "HTTP"]];
// The API redacts credentials inside URLs as "…", which a URL shows percent-encoded.
const REDACTED_IN_URL = /…|%E2%80%A6/i;
const WHERE = { email: (c) => `${c.host}:${c.port}`, whatsapp: (c) => `number ${c.phone_number_id}`, http: (c) => c.base_url || "(no base URL)" };

// A write-only secret: the stored one shown as the API shows it ("…abcd") beside an
// empty password input; left empty, the stored secret is kept.
function secretField(path, name, label, stored, { optional = false } = {}) {
  const wrap = h("div", { class: "field secret", dataset: { field: name } });
  if (stored === undefined) {
    const f = at(path, { label, name, type: "password" });
    f.input.autocomplete = "new-password";
    wrap.append(f);
    wrap.read = () => (f.input.value === "" ? undefined : f.input.value);
    return wrap;
  }
  const f = at(path, { label: `New ${label.toLowerCase()}`, name, type: "password",
    help: stored ? "Leave empty to keep the stored one." : "None is stored; leave empty for none." });
  f.input.autocomplete = "new-password";
  const note = h("p", { class: "stored", dataset: { stored: name } }, stored ? `${label}: stored (${stored})` : `${label}: none stored`);
  wrap.append(note, f);
  let clear = null;
  if (optional && stored) {
    clear = field({ label: `Remove the stored ${label.toLowerCase()}`, name: `${name}_clear`, type: "checkbox" });
    clear.classList.add("check");
    clear.input.addEventListener("change", () => { f.input.disabled = clear.input.checked; });
    wrap.append(clear);
  }
  wrap.read = () => {
    if (clear && clear.input.checked) return null;
    return f.input.value === "" ? undefined : f.input.value;
  };
  return wrap;
}

function check(name, label, value) {
  const f = at(`$.${name}`, { label, name, type: "checkbox", value });
  f.classList.add("check");
  return f;
}

function headerRows(stored) {
  const rows = h("div", { class: "header-rows" });
  const add = (name = "", isStored = false) => {
    const key = field({ label: "Header name", name: "header_name", value: name });
    const val = field({ label: isStored ? "New value (empty: keep the stored one)" : "Value", name: "header_value", type: "password" });
    val.input.autocomplete = "new-password";
    if (isStored) { key.input.readOnly = true; key.input.setAttribute("aria-readonly", "true"); }
    const row = h("div", { class: "row header-row" }, key, val,
      h("button", { type: "button", class: "secondary shrink", "aria-label": `Remove header ${name || "row"}`,
        onclick: () => { row.remove(); document.getElementById("add-header")?.focus(); } }, "Remove"));
    row.read = () => ({ name: key.input.value.trim(), value: val.input.value, stored: isStored, input: val.input });
    rows.append(row);
    return row;
  };
  for (const name of Object.keys(stored || {})) add(name, true);
  const fieldset = h("fieldset", { "data-path": "$.headers" },
    h("legend", {}, "Headers (values are write-only)"), rows,
    h("button", { type: "button", class: "secondary", id: "add-header",
      onclick: () => add().querySelector("input").focus() }, "Add header"));
  fieldset.read = () => {
    const out = {};
    for (const row of rows.children) {
      const r = row.read();
      if (!r.name) continue;
      r.input.dataset.path = `$.headers.${r.name}`;
      out[r.name] = r.stored && r.value === "" ? "…" : r.value;
    }
    return out;
  };
  return fieldset;
}

// The per-type fields: each returns { nodes, read(body) } filling the body it sends.
function typeFields(type, c) {
  const editing = c !== null;
  const v = (k, d = "") => (editing && c[k] !== undefined && c[k] !== null ? c[k] : d);
  const text = (name, label, extra = {}) => at(`$.${name}`, { label, name, value: v(name, extra.value ?? ""), ...extra });
  const num = (name, label, dflt) => at(`$.${name}`, { label, name, type: "number", value: v(name, dflt) });
  const number = (input) => {
    const raw = input.value.trim();
    if (raw === "") return undefined;
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw; // the API names a non-number at its path
  };
  // A URL the API showed with its credentials redacted cannot be sent back as it is.
  const url = (input, shown) => {
    const now = input.value.trim();
    if (editing && now === shown && REDACTED_IN_URL.test(shown)) {
      throw { problems: [{ path: input.dataset.path, message: "holds redacted credentials ('…'): type the whole URL again" }] };
    }
    return now;
  };
  if (type === "email") {
    const host = text("host", "SMTP host", { required: true });
    const port = num("port", "Port", 587);
    const username = text("username", "Username");
    username.input.autocomplete = "off";
    const password = secretField("$.password", "password", "Password", editing ? (c.password || "") : undefined, { optional: true });
    const from = text("from_address", "From address", { required: true, placeholder: "Name <sender@example.com>" });
    const timeout = num("timeout_s", "Timeout (seconds)", 15);
    const starttls = check("starttls", "STARTTLS", v("starttls", true));
    const tls = check("use_tls", "Implicit TLS (port 465)", v("use_tls", false));
    const priv = check("allow_private", "Allow a private or loopback address", v("allow_private", false));
    return {
      nodes: [h("div", { class: "row" }, host, port), h("div", { class: "row" }, username, from), password, timeout,
        h("div", { class: "row checks" }, starttls, tls, priv)],
      read: (body) => {
        body.host = host.input.value.trim();
        const p = number(port.input); if (p !== undefined) body.port = p;
        body.username = username.input.value.trim() || null;
        const secret = password.read(); if (secret !== undefined) body.password = secret;
        body.from_address = from.input.value.trim();
        const t = number(timeout.input); if (t !== undefined) body.timeout_s = t;
        body.starttls = starttls.input.checked;
        body.use_tls = tls.input.checked;
        body.allow_private = priv.input.checked;
      },
    };
  }
  if (type === "whatsapp") {
    const phone = text("phone_number_id", "Phone number id", { required: true, placeholder: "1234567890" });
    const token = secretField("$.access_token", "access_token", "Access token", editing ? (c.access_token || "") : undefined);
    const base = text("api_base", "Graph API base", { value: "https://graph.facebook.com/v21.0" });
    const shownBase = v("api_base", "");
    const priv = check("allow_private", "Allow a private or loopback address (a local test server)", v("allow_private", false));
    return {
      nodes: [phone, token, base, h("div", { class: "row checks" }, priv)],
      read: (body) => {
        body.phone_number_id = phone.input.value.trim();
        const secret = token.read();
        if (secret !== undefined) body.access_token = secret;
        else if (!editing) body.access_token = "";
        const b = url(base.input, shownBase); if (b) body.api_base = b;
        body.allow_private = priv.input.checked;
      },
    };
  }
  const base = text("base_url", "Base URL", { placeholder: "https://crm.example.com" });
  const shownBase = v("base_url", "");
  const headers = headerRows(editing ? c.headers : {});
  const priv = check("allow_private", "Allow private or loopback targets", v("allow_private", false));
  return {
    nodes: [base, headers, h("div", { class: "row checks" }, priv)],
    read: (body) => {
      body.base_url = url(base.input, shownBase);
      body.headers = headers.read();
      body.allow_private = priv.input.checked;
    },
  };
}

function channelForm(c, done) {
  const editing = c !== null;
  const form = h("form", { id: "channel-form", "aria-labelledby": "channel-form-title", novalidate: true });
  const type = at("$.type", { label: "Type", name: "type", options: TYPES, value: editing ? c.type : "email" });
  const id = at("$.id", { label: "Id (optional: generated when empty)", name: "id", placeholder: "mail-main" });
  const name = at("$.name", { label: "Name", name: "name", value: editing ? c.name : "" });
  const specific = h("div", { class: "type-fields" });
  let fields = null;
  const draw = () => { fields = typeFields(type.input.value, c); specific.replaceChildren(...fields.nodes); };
  type.input.addEventListener("change", () => { showProblems(form, []); draw(); });
  draw();
  const submit = h("button", { type: "submit", class: "shrink" }, editing ? "Save" : "Add channel");
  form.append(
    h("h2", { id: "channel-form-title" }, editing ? `Edit channel ${c.id}` : "Add a channel"),
    editing ? h("p", { class: "muted" }, `Type: ${TYPES.find((t) => t[0] === c.type)[1]} · id `, h("code", {}, c.id),
      " (neither can change).") : h("div", { class: "row" }, type, id),
    name, specific,
    h("div", { class: "row actions" }, submit,
      h("button", { type: "button", class: "secondary shrink", onclick: () => done(null) }, editing ? "Cancel" : "Clear")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { type: editing ? c.type : type.input.value, name: name.input.value.trim() };
    try {
      fields.read(body);
      if (!editing && id.input.value.trim()) body.id = id.input.value.trim();
    } catch (err) { showProblems(form, err.problems); return; }
    submit.disabled = true;
    try {
      const saved = editing
        ? await api.put(`/channels/${encodeURIComponent(c.id)}`, body)
        : await api.post("/channels", body);
      toast(editing ? `Channel ${saved.id} saved` : `Channel ${saved.id} added`);
      done(saved);
    } catch (err) {
      showProblems(form, problemsOf(err, err.code === "channel_exists" ? "$.id" : "$"));
      form.querySelector("[aria-invalid=true]")?.focus();
    } finally { submit.disabled = false; }
  });
  return form;
}

async function channelsPage() {
  const list = h("div", { id: "channels-list" });
  const formCard = h("section", { class: "card", id: "channel-form-card" });
  const showForm = (c) => {
    formCard.replaceChildren(channelForm(c, async (saved) => {
      showForm(null);
      if (saved) await load();
      if (c) list.querySelector(`button[data-edit="${CSS.escape(c.id)}"]`)?.focus();
    }));
    if (c) { formCard.scrollIntoView({ block: "nearest" }); formCard.querySelector("input:not([type=hidden])")?.focus(); }
  };
  async function remove(c) {
    if (!(await confirmDialog(`Delete channel ${c.id}?`, "Actions that send through it will fail. A channel that a connector's configuration names cannot be deleted.", { okLabel: "Delete" }))) return;
    try {
      await api.delete(`/channels/${encodeURIComponent(c.id)}`);
      toast(`Channel ${c.id} deleted`);
      await load();
      showForm(null);
    } catch (err) { toast(err.message, true); }
  }
  async function load() {
    const { items } = await api.get("/channels");
    list.replaceChildren(items.length ? h("table", { id: "channels" },
      h("thead", {}, h("tr", {}, ["Id", "Name", "Type", "Sends to", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((c) => h("tr", { dataset: { channel: c.id } },
        h("td", { class: "mono" }, c.id), h("td", {}, c.name || "—"), h("td", {}, c.type),
        h("td", { class: "mono" }, (WHERE[c.type] || (() => ""))(c)),
        h("td", { class: "actions-cell" },
          h("button", { type: "button", class: "secondary shrink", dataset: { edit: c.id }, "aria-label": `Edit channel ${c.id}`, onclick: () => showForm(c) }, "Edit"), " ",
          h("button", { type: "button", class: "danger shrink", dataset: { delete: c.id }, "aria-label": `Delete channel ${c.id}`, onclick: () => remove(c) }, "Delete"))))))
      : h("p", { class: "muted" }, "No channels yet: add one below."));
  }
  await load();
  showForm(null);
  return h("div", { id: "crm-page" }, h("h1", {}, TITLES.channels),
    h("p", { class: "muted" }, "The accounts that email, WhatsApp and HTTP actions send through. Secrets are write-only: the console shows only their last 4 characters."),
    h("section", { class: "card", "aria-label": "Channels" }, list), formCard);
}

// ====================================================================== attributes, agents

// A keyed list with an "add" form and Delete per row (the API has no update).
async function keyedPage({ kind, path, title, intro, columns, key, formFields, toBody, noEdit, deleteText }) {
  const list = h("div", { id: `${kind}-list` });
  async function load() {
    const { items } = await api.get(path);
    list.replaceChildren(items.length ? h("table", { id: kind },
      h("thead", {}, h("tr", {}, [...columns.map((c) => c[0]), ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((item) => h("tr", { dataset: { key: item[key] } },
        columns.map(([, get, cls]) => h("td", { class: cls || null }, get(item))),
        h("td", {}, h("button", { type: "button", class: "danger shrink", dataset: { delete: item[key] },
          "aria-label": `Delete ${item[key]}`, onclick: () => remove(item) }, "Delete"))))))
      : h("p", { class: "muted" }, "None yet: add one below."));
  }
  async function remove(item) {
    if (!(await confirmDialog(`Delete ${item[key]}?`, deleteText, { okLabel: "Delete" }))) return;
    try {
      await api.delete(`${path}/${encodeURIComponent(item[key])}`);
      toast(`${item[key]} deleted`);
      await load();
    } catch (err) { toast(err.message, true); }
  }
  const inputs = formFields();
  const form = h("form", { id: `${kind}-form`, class: "card", "aria-labelledby": `${kind}-form-title`, novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const created = await api.post(path, toBody(inputs));
        showProblems(form, []);
        toast(`${created[key]} added`);
        for (const f of Object.values(inputs)) if (f.input.tagName !== "SELECT") f.input.value = "";
        await load();
      } catch (err) {
        showProblems(form, problemsOf(err, err.status === 409 ? inputs[key].input.dataset.path : "$"));
        form.querySelector("[aria-invalid=true]")?.focus();
      }
    } },
    cardTitle(`${kind}-form-title`, `Add ${title.singular}`),
    h("div", { class: "row" }, Object.values(inputs)),
    h("div", { class: "row actions" }, h("button", { type: "submit", class: "shrink" }, "Add")),
    h("p", { class: "muted" }, noEdit));
  await load();
  return h("div", { id: "crm-page" }, h("h1", {}, title.plural), h("p", { class: "muted" }, intro),
    h("section", { class: "card", "aria-label": title.plural }, list), form);
}

function attributesPage() {
  return keyedPage({
    kind: "attributes", path: "/attributes", key: "name",
    title: { plural: TITLES.attributes, singular: "an attribute" },
    intro: "Contact fields that field mappings fill and templates read as subscriber.<name>.",
    columns: [["Name", (a) => h("code", {}, a.name)], ["Type", (a) => a.type], ["Description", (a) => a.description || "—"], ["Defined", (a) => fmtTime(a.created_at)]],
    formFields: () => ({
      name: at("$.name", { label: "Name", name: "name", placeholder: "city", help: "a lower-case letter, then letters, digits or _" }),
      type: at("$.type", { label: "Type", name: "type", options: ["text", "number", "date", "boolean"] }),
      description: at("$.description", { label: "Description", name: "description" }),
    }),
    toBody: (i) => ({ name: i.name.input.value.trim(), type: i.type.input.value, description: i.description.input.value }),
    noEdit: "The API cannot change an attribute once defined: delete it and define it again.",
    deleteText: "Mappings and templates that use it will no longer find it; the values stored on contacts stay.",
  });
}

function agentsPage() {
  return keyedPage({
    kind: "agents", path: "/agents", key: "email",
    title: { plural: TITLES.agents, singular: "an agent" },
    intro: "Contact owners, matched by email (a mapping's owner_from, the assign-owner step).",
    columns: [["Email", (a) => a.email, "mono"], ["Name", (a) => a.name || "—"], ["Added", (a) => fmtTime(a.created_at)]],
    formFields: () => ({
      email: at("$.email", { label: "Email", name: "email", type: "email", placeholder: "agent@example.com" }),
      name: at("$.name", { label: "Name", name: "name" }),
    }),
    toBody: (i) => ({ email: i.email.input.value.trim(), name: i.name.input.value.trim() }),
    noEdit: "The API cannot change an agent: delete it and add it again.",
    deleteText: "Contacts that it owns keep its email as their owner; new events can no longer assign it.",
  });
}

// ====================================================================== contacts

function contactDetails(c, agents) {
  const attributes = Object.entries(c.attributes || {});
  const agent = c.owner ? agents.get(c.owner) : null;
  return h("section", { class: "card", id: "contact-details", "aria-labelledby": "contact-title", tabindex: "-1" },
    h("h2", { id: "contact-title" }, c.name || c.email || c.mobile || c.id),
    h("table", {}, h("tbody", {}, [
      ["Id", h("code", {}, c.id)], ["Name", c.name || "—"], ["Email", c.email || "—"], ["Mobile", c.mobile || "—"],
      ["Owner", c.owner ? [c.owner, agent ? ` (${agent.name || "agent"})` : " (not a known agent)"] : "—"],
      ["Channel", c.channel || "—"], ["Time zone", c.time_zone || "—"],
      ["Created", fmtTime(c.created_at)], ["Updated", fmtTime(c.updated_at)],
    ].map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { dataset: { field: k.toLowerCase() } }, v))))),
    h("h3", {}, "Subscriber attributes"),
    attributes.length
      ? h("table", { id: "contact-attributes" }, h("tbody", {}, attributes.map(([k, v]) => h("tr", { dataset: { attribute: k } },
          h("th", { scope: "row" }, h("code", {}, k)), h("td", { class: "mono" }, typeof v === "string" ? v : JSON.stringify(v))))))
      : h("p", { class: "muted" }, "none"));
}

async function contactsPage() {
  const agents = new Map((await api.get("/agents")).items.map((a) => [a.email, a]));
  const mobile = at("mobile", { label: "Mobile", name: "mobile", type: "tel", placeholder: "+1 415 555 0100", help: "any format; without a country code, a US number" });
  const email = at("email", { label: "Email", name: "email", type: "email", placeholder: "ann@example.com" });
  const results = h("div", { id: "contact-results", "aria-live": "polite" });
  const details = h("div", {});
  const form = h("form", { id: "contacts-form", class: "card", role: "search", "aria-label": "Find contacts", novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      details.replaceChildren();
      const q = new URLSearchParams();
      if (mobile.input.value.trim()) q.set("mobile", mobile.input.value.trim());
      if (email.input.value.trim()) q.set("email", email.input.value.trim());
      try {
        const { items } = await api.get(`/contacts?${q}`);
        showProblems(form, []);
        results.replaceChildren(items.length ? h("table", { id: "contacts" },
          h("caption", { class: "muted" }, `${items.length} found, first added first`),
          h("thead", {}, h("tr", {}, ["Name", "Email", "Mobile", "Owner", "Attributes", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, items.map((c) => h("tr", { dataset: { contact: c.id } },
            h("td", {}, c.name || "—"), h("td", {}, c.email || "—"), h("td", { class: "mono" }, c.mobile || "—"),
            h("td", {}, c.owner || "—"), h("td", {}, String(Object.keys(c.attributes || {}).length)),
            h("td", {}, h("button", { type: "button", class: "secondary shrink", "aria-label": `Show contact ${c.name || c.email || c.mobile || c.id}`,
              onclick: async () => {
                try {
                  details.replaceChildren(contactDetails(await api.get(`/contacts/${encodeURIComponent(c.id)}`), agents));
                  details.querySelector("#contact-details").focus();
                } catch (err) { toast(err.message, true); }
              } }, "Show"))))))
          : h("p", { class: "muted" }, "No contact matches."));
      } catch (err) {
        results.replaceChildren();
        const path = err.code === "invalid_mobile" ? "mobile" : err.code === "query_required" ? "mobile" : "$";
        showProblems(form, [{ path, message: err.message }]);
      }
    } },
    h("h2", {}, "Find contacts"),
    h("div", { class: "row" }, mobile, email, h("button", { type: "submit", class: "shrink" }, "Search")));
  return h("div", { id: "crm-page" }, h("h1", {}, TITLES.contacts),
    h("p", { class: "muted" }, "Contacts are written by the connectors' field mappings and steps; the API reads them (by mobile or email), it has no edit or delete."),
    form, results, details);
}

export async function render(view, which) {
  const kind = TITLES[which] ? which : view;
  if (kind === "channels") return channelsPage();
  if (kind === "attributes") return attributesPage();
  if (kind === "agents") return agentsPage();
  if (kind === "contacts") return contactsPage();
  return h("div", { class: "card", role: "alert" }, h("h1", {}, "Not found"), h("p", {}, `No page ${kind}.`));
}

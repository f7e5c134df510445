// The steps editor: the connector's steps as forms (filters with AND/OR groups and
// nested groups, formatters, actions, branches with their own steps), with the raw JSON
// as a fallback editing the same value.
// Contract (connector.js relies on it):
//   stepsEditor(steps, { attributes }) → { node, value() }
// `attributes` is the GET /api/v1/connectors/{id}/attributes answer ({event, system,
// subscriber, formatter}: lists of {path, type, …}) or null. value() returns the edited
// steps array, or throws an Error saying what is wrong.
//
// Problems at their fields: the API names a step field "$.config.steps[0].to" when the
// body does not decode and "$.steps[0].to" when validation finds a problem; every
// control carries data-path="$.config.steps[…]…" and sits in a wrapper carrying
// data-path="$.steps[…]…", so ui.showProblems(root, problems) marks it either way.
import { h, json, uid } from "../ui.js";

const OPS = ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with",
  "greater_than", "less_than", "greater_or_equal", "less_or_equal", "exists", "not_exists",
  "is_empty", "is_not_empty", "in_list", "not_in_list", "regex"];
const NO_VALUE = new Set(["exists", "not_exists", "is_empty", "is_not_empty"]);
const LISTS = new Set(["in_list", "not_in_list"]);
const FORMATTERS = ["date.parse", "date.format", "date.convert_tz", "date.add", "date.now",
  "text.upper", "text.lower", "text.title", "text.capitalize", "text.trim", "text.replace",
  "text.split", "text.default", "text.truncate", "text.join", "number.add", "number.subtract",
  "number.multiply", "number.divide", "number.round", "number.currency", "lookup"];
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const CONTACT_FIELDS = ["name", "email", "mobile", "time_zone", "owner", "channel"];
const KINDS = [["event", "Event attributes"], ["system", "System attributes"],
  ["subscriber", "Subscriber attributes"], ["formatter", "Formatter"]];

// Each type's fields in order: { name, kind, label, optional, help }. kind says the control:
// id; text (a literal); template (one line) / area (multi-line template); path (an
// attribute path); number; json (an object); select (with `options`); pairs (an object of
// templates: rows of key and value); list (a list of templates).
const F = (name, kind, label, extra = {}) => ({ name, kind, label, ...extra });
const ID = F("id", "id", "Step id");
const TYPES = {
  filter: { label: "Filter", fields: [ID] },
  formatter: { label: "Formatter", fields: [ID,
    F("op", "select", "Operation", { options: FORMATTERS }),
    F("input", "template", "Input"),
    F("output", "text", "Output name", { help: "Read later as formatter.<output name>." }),
    F("options", "json", "Options (JSON object)", { optional: true, help: 'e.g. {"format": "%d %B %Y"}' })] },
  http: { label: "HTTP request", fields: [ID,
    F("method", "select", "Method", { options: METHODS }),
    F("url", "template", "URL"),
    F("headers", "pairs", "Headers", { keyLabel: "Header", add: "Add header" }),
    F("body", "area", "Body", { optional: true }),
    F("channel", "text", "HTTP channel id", { optional: true }),
    F("timeout_s", "number", "Timeout (seconds)", { optional: true })] },
  email: { label: "Send email", fields: [ID,
    F("channel", "text", "Email channel id", { optional: true }),
    F("channel_from", "path", "…or the attribute holding a channel id", { optional: true }),
    F("to", "template", "To"),
    F("subject", "template", "Subject"),
    F("text", "area", "Text", { optional: true }),
    F("html", "area", "HTML", { optional: true })] },
  whatsapp: { label: "Send WhatsApp", fields: [ID,
    F("channel", "text", "WhatsApp channel id", { optional: true }),
    F("channel_from", "path", "…or the attribute holding a channel id", { optional: true }),
    F("to", "template", "To"),
    F("text", "area", "Text", { optional: true }),
    F("template_name", "template", "Template name (instead of text)", { optional: true }),
    F("template_language", "text", "Template language", { optional: true, placeholder: "en_US" }),
    F("template_params", "list", "Template parameters", { add: "Add parameter" })] },
  update_contact: { label: "Update contact", fields: [ID,
    F("fields", "pairs", "Fields", { keyLabel: "Contact field or subscriber attribute", add: "Add field", keys: "contact" })] },
  assign_owner: { label: "Assign owner", fields: [ID, F("agent_email", "template", "Agent email")] },
  branch: { label: "Branch", fields: [ID] },
};
const condition = () => ({ attribute: "", op: "equals", value: "" });
const DEFAULTS = {
  filter: () => ({ when: { match: "all", conditions: [condition()], groups: [] } }),
  formatter: () => ({ op: "text.upper", input: "", output: "" }),
  http: () => ({ method: "POST", url: "", headers: {} }),
  email: () => ({ to: "{{ system.email }}", subject: "", text: "" }),
  whatsapp: () => ({ to: "{{ system.mobile }}", text: "" }),
  update_contact: () => ({ fields: {} }),
  assign_owner: () => ({ agent_email: "" }),
  branch: () => ({ steps: [] }),
};

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
// Unset optional fields leave the JSON as the API would have it.
const clean = (value) => JSON.parse(JSON.stringify(value));

// ------------------------------------------------------------------ fields

// A labelled control at `rel` (a path relative to the config: "steps[0].to"); the
// control carries the decoding path, a wrapper (control and picker) the validation path.
function labelled(label, control, rel, { help, picker } = {}) {
  control.id = control.id || uid("step-field");
  if (rel) control.dataset.path = `$.config.${rel}`;
  const inner = picker ? h("span", { class: "with-picker" }, control, picker) : control;
  const at = h("span", { class: "at-path" }, inner);
  if (rel) at.dataset.path = `$.${rel}`;
  let helpNode = null;
  if (help) {
    helpNode = h("div", { class: "muted help", id: uid("help") }, help);
    control.setAttribute("aria-describedby", helpNode.id);
  }
  return h("div", { class: "field" }, h("label", { for: control.id }, label), at, helpNode);
}

// Where problems about a whole step or group go (nothing to mark, a message after it).
function slot(rel) {
  return h("div", { class: "problem-slot", dataset: { path: `$.${rel}` } },
    h("div", { class: "problem-slot", dataset: { path: `$.config.${rel}` } }));
}

// The attribute picker: a dialog of the connector's attributes by kind; picking inserts
// "{{ path }}" at the cursor of a template field, the path itself into a path field.
function pickerButton(ctx, target, label, template) {
  return h("button", {
    type: "button", class: "secondary shrink picker", "aria-haspopup": "dialog",
    "aria-label": `Insert an attribute into ${label}`, title: "Insert an attribute",
    onclick: () => openPicker(ctx, target, label, template),
  }, "</>");
}

function openPicker(ctx, target, label, template) {
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
  }
  const attrs = ctx.attributes || {};
  const groups = KINDS.map(([kind, title]) => {
    const items = attrs[kind] || [];
    return h("section", { class: "attr-group", dataset: { kind } }, h("h3", {}, title),
      items.length ? h("ul", {}, items.map((a) => h("li", { dataset: { search: a.path.toLowerCase() } },
        h("button", { type: "button", class: "link attr", dataset: { attribute: a.path }, onclick: () => insert(a.path) },
          h("code", {}, a.path)), " ", h("span", { class: "muted" }, a.type || ""))))
        : h("p", { class: "muted" }, kind === "event" ? "None yet: send an event first." : "None."));
  });
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    dialog.querySelectorAll("li[data-search]").forEach((li) => { li.hidden = Boolean(needle) && !li.dataset.search.includes(needle); });
  });
  dialog.append(h("h2", { id: titleId }, `Insert an attribute into ${label}`),
    h("label", { for: filterId }, "Filter"), filter, h("div", { class: "attr-groups" }, groups),
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary shrink", onclick: () => dialog.close() }, "Close")));
  document.body.append(dialog);
  dialog.addEventListener("close", () => { dialog.remove(); target.focus(); });
  dialog.showModal();
  filter.focus();
}

function shown(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

// An object of templates as rows of key and value (headers, contact fields).
function pairsControl(step, spec, rel, ctx, label) {
  const rows = Object.entries(isObject(step[spec.name]) ? step[spec.name] : {}).map(([k, v]) => ({ k, v: shown(v) }));
  const root = h("div", { class: "pairs", dataset: { field: spec.name } });
  const sync = () => { step[spec.name] = Object.fromEntries(rows.filter((r) => r.k.trim()).map((r) => [r.k.trim(), r.v])); };
  function render(focusLast) {
    root.replaceChildren(...rows.map((row, k) => {
      const key = h("input", { type: "text", name: "key", value: row.k, autocomplete: "off", spellcheck: "false",
        list: spec.keys === "contact" ? ctx.contactList : null });
      const value = h("input", { type: "text", name: "value", value: row.v, autocomplete: "off", spellcheck: "false" });
      const valueField = labelled(`Value of ${row.k || `row ${k + 1}`}`, value, `${rel}.${row.k}`,
        { picker: pickerButton(ctx, value, `${label}: ${row.k || `row ${k + 1}`}`, true) });
      key.addEventListener("input", () => {
        row.k = key.value; sync();
        const name = row.k.trim();
        value.dataset.path = `$.config.${rel}.${name}`;
        valueField.querySelector(".at-path").dataset.path = `$.${rel}.${name}`;
        valueField.querySelector("label").textContent = `Value of ${name || `row ${k + 1}`}`;
      });
      value.addEventListener("input", () => { row.v = value.value; sync(); });
      return h("div", { class: "row pair" }, labelled(spec.keyLabel, key, null), valueField,
        h("button", { type: "button", class: "link shrink", "aria-label": `Remove ${spec.keyLabel.toLowerCase()} ${row.k || k + 1}`,
          onclick: () => { rows.splice(k, 1); sync(); render(); root.querySelector(".add-pair").focus(); } }, "Remove"));
    }), h("button", { type: "button", class: "secondary shrink add-pair", onclick: () => { rows.push({ k: "", v: "" }); render(true); } }, spec.add));
    if (focusLast) root.querySelectorAll("input[name=key]")[rows.length - 1]?.focus();
  }
  render();
  return h("fieldset", { class: "pairs-field" }, h("legend", {}, label), slot(rel), root);
}

// A list of templates (WhatsApp template parameters).
function listControl(step, spec, rel, ctx, label) {
  const items = Array.isArray(step[spec.name]) ? step[spec.name].map(shown) : [];
  const root = h("div", { class: "list", dataset: { field: spec.name } });
  const sync = () => { step[spec.name] = [...items]; };
  function render(focusLast) {
    root.replaceChildren(...items.map((item, k) => {
      const input = h("input", { type: "text", name: spec.name, value: item, autocomplete: "off", spellcheck: "false",
        oninput: (e) => { items[k] = e.target.value; sync(); } });
      return h("div", { class: "row" },
        labelled(`Parameter ${k + 1}`, input, `${rel}[${k}]`, { picker: pickerButton(ctx, input, `${label} ${k + 1}`, true) }),
        h("button", { type: "button", class: "link shrink", "aria-label": `Remove parameter ${k + 1}`,
          onclick: () => { items.splice(k, 1); sync(); render(); root.querySelector(".add-item").focus(); } }, "Remove"));
    }), h("button", { type: "button", class: "secondary shrink add-item", onclick: () => { items.push(""); sync(); render(true); } }, spec.add));
    if (focusLast) root.querySelectorAll("input")[items.length - 1]?.focus();
  }
  render();
  return h("fieldset", { class: "list-field" }, h("legend", {}, label), slot(rel), root);
}

// One field of a step, labelled, at its path.
function fieldFor(step, spec, rel, ctx) {
  const { name, kind, label, optional, help } = spec;
  const value = step[name];
  if (kind === "pairs") return pairsControl(step, spec, rel, ctx, label);
  if (kind === "list") return listControl(step, spec, rel, ctx, label);
  let control;
  let picker = null;
  if (kind === "select") {
    const options = spec.options.includes(value) || value === undefined ? spec.options : [value, ...spec.options];
    control = h("select", { name, onchange: (e) => { step[name] = e.target.value; } },
      options.map((o) => h("option", { value: o, selected: value === o }, o)));
  } else if (kind === "json") {
    control = h("textarea", { name, rows: 2, spellcheck: "false", class: "json" }, value === undefined ? "" : json(value));
    control.addEventListener("input", () => {
      const text = control.value.trim();
      let parsed;
      let problem = null;
      try {
        parsed = text === "" ? undefined : JSON.parse(text);
        if (parsed !== undefined && !isObject(parsed)) problem = "must be a JSON object";
      } catch (e) { problem = `not valid JSON (${e.message})`; }
      const note = control.closest(".field").querySelector(".json-problem");
      if (problem) {
        control.dataset.jsonError = `${label}: ${problem}`;
        control.setAttribute("aria-invalid", "true");
        note.textContent = problem; note.hidden = false;
      } else {
        step[name] = parsed;
        delete control.dataset.jsonError;
        control.removeAttribute("aria-invalid");
        note.textContent = ""; note.hidden = true;
      }
    });
  } else {
    const multi = kind === "area";
    control = multi
      ? h("textarea", { name, rows: 3, spellcheck: "false" }, shown(value))
      : h("input", { type: kind === "number" ? "number" : "text", name, value: shown(value), autocomplete: "off",
        spellcheck: "false", placeholder: spec.placeholder, step: kind === "number" ? "any" : null,
        list: kind === "path" ? ctx.attributeList : null });
    control.addEventListener("input", () => {
      const text = control.value;
      if (kind === "number") step[name] = text === "" ? undefined : Number(text);
      else step[name] = text === "" && optional ? undefined : text;
    });
    if (kind === "template" || kind === "area" || kind === "path") picker = pickerButton(ctx, control, label, kind !== "path");
  }
  const wrap = labelled(label, control, rel, { help, picker });
  if (kind === "json") wrap.append(h("p", { class: "problem json-problem", role: "alert", hidden: true }));
  return wrap;
}

// ------------------------------------------------------------------ filters

function conditionRow(c, rel, ctx, k, remove) {
  const attribute = h("input", { type: "text", name: "attribute", value: c.attribute || "", list: ctx.attributeList,
    autocomplete: "off", spellcheck: "false", oninput: (e) => { c.attribute = e.target.value; } });
  const value = h("input", { type: "text", name: "value", value: Array.isArray(c.value) ? c.value.join(", ") : shown(c.value),
    autocomplete: "off", spellcheck: "false" });
  const parse = () => {
    if (NO_VALUE.has(c.op)) return undefined;
    return LISTS.has(c.op) ? value.value.split(",").map((s) => s.trim()).filter(Boolean) : value.value;
  };
  value.addEventListener("input", () => { c.value = parse(); });
  if (typeof c.op !== "string" || !c.op) c.op = "equals";
  const opNow = c.op;
  const op = h("select", { name: "op" }, (OPS.includes(opNow) ? OPS : [opNow, ...OPS]).map((o) => h("option", { value: o, selected: opNow === o }, o.replaceAll("_", " "))));
  const valueField = labelled(LISTS.has(opNow) ? "Values (comma-separated)" : "Value", value, `${rel}.value`);
  valueField.hidden = NO_VALUE.has(opNow);
  op.addEventListener("change", () => {
    c.op = op.value;
    valueField.hidden = NO_VALUE.has(c.op);
    valueField.querySelector("label").textContent = LISTS.has(c.op) ? "Values (comma-separated)" : "Value";
    c.value = parse();
    if (c.value === undefined) delete c.value;
  });
  const caseSensitive = h("input", { type: "checkbox", name: "case_sensitive", checked: Boolean(c.case_sensitive),
    onchange: (e) => { c.case_sensitive = e.target.checked; } });
  const caseField = labelled("Case sensitive", caseSensitive, `${rel}.case_sensitive`);
  caseField.classList.add("check", "shrink");
  return h("div", { class: "row condition", dataset: { conditionIndex: String(k) }, role: "group", "aria-label": `Condition ${k + 1}` },
    labelled("Attribute", attribute, `${rel}.attribute`, { picker: pickerButton(ctx, attribute, `condition ${k + 1}'s attribute`, false) }),
    labelled("Operator", op, `${rel}.op`), valueField, caseField,
    h("button", { type: "button", class: "link shrink remove-condition", "aria-label": `Remove condition ${k + 1}`, onclick: remove }, "Remove"));
}

// A filter's group: match all/any, its conditions and nested groups (recursive).
function groupEditor(group, rel, ctx, depth) {
  group.match = group.match === "any" ? "any" : "all";
  group.conditions = Array.isArray(group.conditions) ? group.conditions : [];
  group.groups = Array.isArray(group.groups) ? group.groups : [];
  const root = h("fieldset", { class: "group", dataset: { depth: String(depth) } });
  function render(focus) {
    const match = h("select", { name: "match", onchange: (e) => { group.match = e.target.value; } },
      [["all", "all of these (AND)"], ["any", "any of these (OR)"]].map(([v, t]) => h("option", { value: v, selected: group.match === v }, t)));
    const rows = group.conditions.map((c, k) => conditionRow(c, `${rel}.conditions[${k}]`, ctx, k, () => {
      group.conditions.splice(k, 1); render(() => root.querySelector(":scope > .group-actions .add-condition"));
    }));
    const nested = group.groups.map((g, k) => h("div", { class: "nested" },
      groupEditor(g, `${rel}.groups[${k}]`, ctx, depth + 1),
      h("button", { type: "button", class: "link remove-group", "aria-label": `Remove group ${k + 1}`,
        onclick: () => { group.groups.splice(k, 1); render(() => root.querySelector(":scope > .group-actions .add-group")); } }, "Remove this group")));
    const matchField = labelled("Passes when it matches", match, `${rel}.match`);
    matchField.classList.add("match");
    root.replaceChildren(
      h("legend", {}, depth === 0 ? "Conditions" : `Group ${depth > 1 ? `(level ${depth})` : ""}`.trim()),
      slot(rel), matchField, ...rows, ...nested,
      h("div", { class: "row group-actions" },
        h("button", { type: "button", class: "secondary shrink add-condition", onclick: () => {
          group.conditions.push(condition());
          render(() => root.querySelector(`:scope > .condition[data-condition-index="${group.conditions.length - 1}"] input[name=attribute]`));
        } }, "Add condition"),
        h("button", { type: "button", class: "secondary shrink add-group", onclick: () => {
          group.groups.push({ match: group.match === "all" ? "any" : "all", conditions: [condition()], groups: [] });
          render(() => [...root.querySelectorAll(":scope > .nested")].pop()?.querySelector("select[name=match]"));
        } }, "Add group")));
    if (focus) focus()?.focus();
  }
  render();
  return root;
}

// ------------------------------------------------------------------ step lists

function allIds(steps, into = new Set()) {
  for (const s of steps) {
    if (!isObject(s)) continue;
    if (s.id) into.add(s.id);
    if (Array.isArray(s.steps)) allIds(s.steps, into);
  }
  return into;
}

// A list of steps (the top level, or a branch's), each a card; recursive for branches.
function listEditor(steps, rel, ctx, owner) {
  const root = h("div", { class: "step-list", dataset: { listPath: `$.${rel}` } });
  function move(k, by) {
    const [s] = steps.splice(k, 1);
    steps.splice(k + by, 0, s);
    render();
    const card = root.querySelector(`:scope > .step[data-step-index="${k + by}"]`);
    const again = card.querySelector(`:scope > .step-head .${by < 0 ? "move-up" : "move-down"}`);
    (again && !again.disabled ? again : card.querySelector(":scope > .step-head button:not(:disabled)")).focus();
  }
  function card(step, k) {
    const at = `${rel}[${k}]`;
    const spec = isObject(step) ? TYPES[step.type] : undefined;
    const title = spec ? spec.label : `Unknown step${isObject(step) && step.type ? ` type ${step.type}` : ""}`;
    const headingId = uid("step-title");
    let body;
    if (!spec) {
      body = [slot(`${at}.type`), h("p", { class: "muted" }, "Edit this step with Raw JSON.")];
    } else {
      body = spec.fields.map((f) => fieldFor(step, f, `${at}.${f.name}`, ctx));
      if (step.type === "filter") {
        step.when = isObject(step.when) ? step.when : { match: "all", conditions: [], groups: [] };
        body.push(groupEditor(step.when, `${at}.when`, ctx, 0));
      }
      if (step.type === "branch") {
        step.steps = Array.isArray(step.steps) ? step.steps : [];
        body.push(h("div", { class: "branch-steps" }, h("h4", {}, "Steps of this branch"),
          listEditor(step.steps, `${at}.steps`, ctx, step)));
      }
    }
    // The heading names the step by its id as it is typed.
    const named = h("span", { class: "muted mono step-name" }, isObject(step) && step.id ? ` ${step.id}` : "");
    const idInput = body[0] && body[0].querySelector("input[name=id]");
    if (idInput) idInput.addEventListener("input", () => { named.textContent = idInput.value ? ` ${idInput.value}` : ""; });
    return h("section", {
      class: `step ${spec ? step.type : "unknown"}`, "aria-labelledby": headingId,
      dataset: { stepIndex: String(k), stepType: isObject(step) ? String(step.type || "") : "", stepPath: `$.${at}` },
    },
    h("div", { class: "row step-head" },
      h("h3", { class: "step-title", id: headingId }, `${k + 1}. ${title}`, named),
      h("button", { type: "button", class: "link shrink move-up", disabled: k === 0, "aria-label": `Move step ${k + 1} up`, onclick: () => move(k, -1) }, "Move up"),
      h("button", { type: "button", class: "link shrink move-down", disabled: k === steps.length - 1, "aria-label": `Move step ${k + 1} down`, onclick: () => move(k, 1) }, "Move down"),
      h("button", { type: "button", class: "link shrink remove-step", "aria-label": `Remove step ${k + 1}`, onclick: () => {
        steps.splice(k, 1);
        render();
        const next = root.querySelector(`:scope > .step[data-step-index="${Math.min(k, steps.length - 1)}"] .remove-step`);
        (next || root.querySelector(":scope > .add-step select")).focus();
      } }, "Remove")),
    slot(at), ...body);
  }
  function render() {
    const typeId = uid("new-step-type");
    const type = h("select", { id: typeId, name: "new-step-type" },
      Object.entries(TYPES).map(([t, s]) => h("option", { value: t }, s.label)));
    const add = h("button", { type: "button", class: "secondary shrink add-step-button", onclick: () => {
      const ids = allIds(ctx.state());
      let n = 1;
      while (ids.has(`${type.value}-${n}`)) n += 1;
      steps.push({ type: type.value, id: `${type.value}-${n}`, ...DEFAULTS[type.value]() });
      const chosen = type.value;
      render();
      root.querySelector(":scope > .add-step select").value = chosen;
      root.querySelector(`:scope > .step[data-step-index="${steps.length - 1}"] input[name=id]`).focus();
    } }, "Add");
    root.replaceChildren(
      ...(steps.length ? [] : [h("p", { class: "muted empty" }, owner ? "No steps in this branch yet." : "No steps yet.")]),
      ...steps.map(card),
      h("div", { class: "row add-step" },
        h("div", { class: "field" }, h("label", { for: typeId }, owner ? "Add a step to this branch" : "Add a step"), type), add));
  }
  render();
  return root;
}

// ------------------------------------------------------------------ the editor

export function stepsEditor(steps, { attributes } = {}) {
  let state = clean(Array.isArray(steps) ? steps : []);
  const attributeList = uid("step-attributes");
  const contactList = uid("contact-fields");
  const known = KINDS.flatMap(([k]) => ((attributes && attributes[k]) || []).map((a) => [a.path, `${k} · ${a.type || ""}`]));
  const subscriberNames = ((attributes && attributes.subscriber) || []).map((a) => a.path.replace(/^subscriber\./, ""));
  const ctx = { attributes, attributeList, contactList, state: () => state };
  const datalists = [
    h("datalist", { id: attributeList }, known.map(([path, label]) => h("option", { value: path, label }))),
    h("datalist", { id: contactList }, [...CONTACT_FIELDS, ...subscriberNames].map((n) => h("option", { value: n }))),
  ];

  const forms = h("div", { class: "steps-forms" });
  const rawId = uid("steps-json");
  const raw = h("textarea", { id: rawId, name: "steps", rows: 20, spellcheck: "false", dataset: { path: "$.config.steps" } });
  const rawNote = h("p", { class: "problem raw-problem", role: "alert", hidden: true });
  const rawPanel = h("div", { class: "steps-raw" },
    h("label", { for: rawId }, "Steps (JSON: the configuration's \"steps\" list)"),
    h("span", { class: "at-path", dataset: { path: "$.steps" } }, raw), rawNote);
  const toggle = h("button", { type: "button", class: "secondary shrink", id: "steps-raw-toggle", "aria-pressed": "false",
    "aria-controls": uid("steps-body") }, "Raw JSON");
  const bodyNode = h("div", { id: toggle.getAttribute("aria-controls"), class: "steps-body" });
  const toggleNote = h("p", { class: "problem toggle-problem", role: "alert", hidden: true });
  let rawMode = false;

  const jsonErrors = () => [...forms.querySelectorAll("[data-json-error]")].map((el) => el.dataset.jsonError);
  function parseRaw() {
    let parsed;
    try { parsed = JSON.parse(raw.value); } catch (e) { throw new Error(`the steps are not valid JSON: ${e.message}`); }
    if (!Array.isArray(parsed)) throw new Error("the steps must be a JSON list ([ … ])");
    const bad = parsed.findIndex((s) => !isObject(s));
    if (bad >= 0) throw new Error(`step ${bad + 1} is not a JSON object`);
    return parsed;
  }
  function showForms() {
    rawMode = false;
    forms.replaceChildren(listEditor(state, "steps", ctx, null));
    bodyNode.replaceChildren(forms);
    toggle.setAttribute("aria-pressed", "false");
  }
  function showRaw() {
    rawMode = true;
    raw.value = json(clean(state));
    raw.removeAttribute("aria-invalid");
    rawNote.hidden = true;
    bodyNode.replaceChildren(rawPanel);
    toggle.setAttribute("aria-pressed", "true");
  }
  toggle.addEventListener("click", () => {
    toggleNote.hidden = true;
    if (!rawMode) {
      const errors = jsonErrors();
      if (errors.length) { toggleNote.textContent = `Fix these first: ${errors.join("; ")}`; toggleNote.hidden = false; return; }
      showRaw();
      return;
    }
    try {
      state = parseRaw();
    } catch (err) {
      raw.setAttribute("aria-invalid", "true");
      rawNote.textContent = `${err.message}: fix it to go back to the forms.`;
      rawNote.hidden = false;
      raw.focus();
      return;
    }
    showForms();
  });
  showForms();

  const node = h("div", { class: "steps-editor" }, datalists,
    h("div", { class: "row steps-intro" },
      h("p", { class: "muted" }, "Steps run in order. A filter that does not pass stops the list it is in: inside a branch, only that branch."),
      toggle),
    toggleNote, bodyNode);
  return {
    node,
    value() {
      if (rawMode) return parseRaw();
      const errors = jsonErrors();
      if (errors.length) throw new Error(errors.join("; "));
      return clean(state);
    },
  };
}

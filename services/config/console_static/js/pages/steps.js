// The steps editor: the connector's steps as forms (filters with AND/OR groups,
// formatters, actions, branches with their own steps), with the raw JSON as a fallback.
// Contract (connector.js relies on it):
//   stepsEditor(steps, { attributes }) → { node, value() }
// value() returns the edited steps array, or throws an Error saying what is wrong.
// Every input carries data-path="$.steps[i]…", the path the API's 422 problems name.
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

// Each type: its fields in order, as [name, kind, label]; kind says the control:
// text, area (multi-line template), json (an object or list), select:<list>, number.
const TYPES = {
  filter: { label: "Filter", fields: [["id", "text", "Step id"]] },
  formatter: { label: "Formatter", fields: [["id", "text", "Step id"], ["op", "select:formatters", "Operation"],
    ["input", "text", "Input (template)"], ["output", "text", "Output name (formatter.<name>)"],
    ["options", "json", "Options (JSON)"]] },
  http: { label: "HTTP request", fields: [["id", "text", "Step id"], ["method", "select:methods", "Method"],
    ["url", "text", "URL (template)"], ["headers", "json", "Headers (JSON object of templates)"],
    ["body", "area", "Body (template)"], ["channel", "text", "HTTP channel id (optional)"],
    ["timeout_s", "number", "Timeout (seconds)"]] },
  email: { label: "Send email", fields: [["id", "text", "Step id"], ["to", "text", "To (template)"],
    ["subject", "text", "Subject (template)"], ["text", "area", "Text (template)"], ["html", "area", "HTML (template)"],
    ["channel", "text", "Email channel id"], ["channel_from", "text", "…or the attribute holding a channel id"]] },
  whatsapp: { label: "Send WhatsApp", fields: [["id", "text", "Step id"], ["to", "text", "To (template)"],
    ["text", "area", "Text (template)"], ["template_name", "text", "Template name (optional)"],
    ["template_language", "text", "Template language"], ["template_params", "json", "Template parameters (JSON list)"],
    ["channel", "text", "WhatsApp channel id"], ["channel_from", "text", "…or the attribute holding a channel id"]] },
  update_contact: { label: "Update contact", fields: [["id", "text", "Step id"],
    ["fields", "json", "Fields (JSON object: contact field → template)"]] },
  assign_owner: { label: "Assign owner", fields: [["id", "text", "Step id"], ["agent_email", "text", "Agent email (template)"]] },
  branch: { label: "Branch", fields: [["id", "text", "Step id"]] },
};
const DEFAULTS = {
  filter: () => ({ when: { match: "all", conditions: [{ attribute: "", op: "equals", value: "" }], groups: [] } }),
  formatter: () => ({ op: "text.upper", input: "", output: "", options: {} }),
  http: () => ({ method: "POST", url: "", headers: {}, body: "" }),
  email: () => ({ to: "{{ system.email }}", subject: "", text: "" }),
  whatsapp: () => ({ to: "{{ system.mobile }}", text: "" }),
  update_contact: () => ({ fields: {} }),
  assign_owner: () => ({ agent_email: "" }),
  branch: () => ({ steps: [] }),
};

let counter = 0;

function labelled(label, control, path) {
  control.id = control.id || uid("step-field");
  if (path) control.dataset.path = path;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control);
}

function attributeList(attributes) {
  const id = uid("attributes");
  const kinds = attributes ? ["event", "system", "subscriber", "formatter"] : [];
  const options = kinds.flatMap((k) => (attributes[k] || []).map((a) => h("option", { value: a.path }, k)));
  return { id, node: h("datalist", { id }, options) };
}

// A filter's group: match all/any, its conditions, and nested groups (recursive).
function groupEditor(group, path, list, onChange) {
  group.conditions = group.conditions || [];
  group.groups = group.groups || [];
  const root = h("fieldset", { class: "group", dataset: { path } });
  function render() {
    const match = h("select", { name: "match", onchange: (e) => { group.match = e.target.value; } },
      [["all", "all of these (AND)"], ["any", "any of these (OR)"]].map(([v, t]) => h("option", { value: v, selected: (group.match || "all") === v }, t)));
    const rows = group.conditions.map((c, k) => conditionEditor(c, `${path}.conditions[${k}]`, list, () => {
      group.conditions.splice(k, 1); render(); onChange();
    }));
    const nested = group.groups.map((g, k) => h("div", { class: "nested" },
      groupEditor(g, `${path}.groups[${k}]`, list, onChange),
      h("button", { type: "button", class: "link", onclick: () => { group.groups.splice(k, 1); render(); onChange(); } }, "Remove this group")));
    root.replaceChildren(
      h("legend", {}, "Passes when"), labelled("Match", match, `${path}.match`), ...rows, ...nested,
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary shrink add-condition", onclick: () => {
          group.conditions.push({ attribute: "", op: "equals", value: "" }); render(); onChange();
        } }, "Add condition"),
        h("button", { type: "button", class: "secondary shrink add-group", onclick: () => {
          group.groups.push({ match: "any", conditions: [{ attribute: "", op: "equals", value: "" }], groups: [] }); render(); onChange();
        } }, "Add group")));
  }
  render();
  return root;
}

function conditionEditor(c, path, list, remove) {
  const attribute = h("input", { type: "text", name: "attribute", value: c.attribute || "", list,
    oninput: (e) => { c.attribute = e.target.value; } });
  const op = h("select", { name: "op", onchange: (e) => { c.op = e.target.value; valueRow.hidden = NO_VALUE.has(c.op); } },
    OPS.map((o) => h("option", { value: o, selected: (c.op || "equals") === o }, o.replaceAll("_", " "))));
  const shown = Array.isArray(c.value) ? c.value.join(", ") : c.value === undefined || c.value === null ? "" : String(c.value);
  const value = h("input", { type: "text", name: "value", value: shown, oninput: (e) => {
    const text = e.target.value;
    c.value = LISTS.has(c.op) ? text.split(",").map((s) => s.trim()).filter(Boolean) : text;
  } });
  const caseSensitive = h("input", { type: "checkbox", name: "case_sensitive", checked: Boolean(c.case_sensitive),
    onchange: (e) => { c.case_sensitive = e.target.checked; } });
  const valueRow = labelled("Value (a list: comma-separated)", value, `${path}.value`);
  valueRow.hidden = NO_VALUE.has(c.op);
  return h("div", { class: "row condition" },
    labelled("Attribute", attribute, `${path}.attribute`), labelled("Operator", op, `${path}.op`), valueRow,
    labelled("Case sensitive", caseSensitive, `${path}.case_sensitive`),
    h("button", { type: "button", class: "link shrink", onclick: remove }, "Remove condition"));
}

function fieldControl(step, [name, kind], path, problems) {
  const value = step[name];
  if (kind.startsWith("select:")) {
    const options = kind === "select:methods" ? METHODS : FORMATTERS;
    return h("select", { name, onchange: (e) => { step[name] = e.target.value; } },
      options.map((o) => h("option", { value: o, selected: value === o }, o)));
  }
  if (kind === "json") {
    const area = h("textarea", { name, rows: 3, spellcheck: "false" }, value === undefined ? "" : json(value));
    area.addEventListener("input", () => {
      const text = area.value.trim();
      try {
        step[name] = text === "" ? undefined : JSON.parse(text);
        problems.delete(path);
        area.removeAttribute("aria-invalid");
      } catch (e) {
        problems.set(path, `${path}: not valid JSON (${e.message})`);
        area.setAttribute("aria-invalid", "true");
      }
    });
    return area;
  }
  if (kind === "area") {
    return h("textarea", { name, rows: 3, oninput: (e) => { step[name] = e.target.value; } }, value ?? "");
  }
  return h("input", { type: kind === "number" ? "number" : "text", name, value: value ?? "",
    oninput: (e) => {
      const text = e.target.value;
      if (kind === "number") step[name] = text === "" ? undefined : Number(text);
      else step[name] = text === "" && name !== "id" ? undefined : text;
    } });
}

// A list of steps (the top level, or a branch's), each a card; recursive for branches.
function listEditor(steps, path, ctx) {
  const root = h("div", { class: "step-list", dataset: { path } });
  function move(k, by) { const [s] = steps.splice(k, 1); steps.splice(k + by, 0, s); render(); }
  function render() {
    const cards = steps.map((step, k) => {
      const at = `${path}[${k}]`;
      const spec = TYPES[step.type];
      const body = spec
        ? spec.fields.map((f) => labelled(f[2], fieldControl(step, f, `${at}.${f[0]}`, ctx.problems), `${at}.${f[0]}`))
        : [h("p", { class: "problem" }, `Unknown step type ${step.type}: edit it as JSON.`)];
      if (step.type === "filter") body.push(groupEditor(step.when = step.when || { match: "all", conditions: [] }, `${at}.when`, ctx.list, () => {}));
      if (step.type === "branch") body.push(h("div", { class: "branch-steps" }, h("h4", {}, "Steps of this branch"), listEditor(step.steps = step.steps || [], `${at}.steps`, ctx)));
      return h("section", { class: `step ${step.type}`, dataset: { stepIndex: String(k), path: at }, "aria-label": `${spec ? spec.label : step.type} ${step.id || ""}` },
        h("div", { class: "row" },
          h("h3", { class: "shrink" }, `${k + 1}. ${spec ? spec.label : step.type}`),
          h("button", { type: "button", class: "link shrink", disabled: k === 0, onclick: () => move(k, -1) }, "Move up"),
          h("button", { type: "button", class: "link shrink", disabled: k === steps.length - 1, onclick: () => move(k, 1) }, "Move down"),
          h("button", { type: "button", class: "link shrink remove-step", onclick: () => { steps.splice(k, 1); render(); } }, "Remove")),
        ...body);
    });
    const typeId = uid("new-step-type");
    const type = h("select", { id: typeId, name: "new-step-type" }, Object.entries(TYPES).map(([t, s]) => h("option", { value: t }, s.label)));
    root.replaceChildren(...cards, h("div", { class: "row add-step" },
      h("div", {}, h("label", { for: typeId }, path === "$.steps" ? "Add a step" : "Add a step to this branch"), type),
      h("button", { type: "button", class: "secondary shrink", onclick: () => {
        counter += 1;
        steps.push({ type: type.value, id: `${type.value}-${counter}`, ...DEFAULTS[type.value]() });
        render();
      } }, "Add")));
  }
  render();
  return root;
}

// Unset optional fields leave the JSON as the API would write it.
function clean(value) {
  return JSON.parse(JSON.stringify(value, (k, v) => (v === undefined ? undefined : v)));
}

export function stepsEditor(steps, { attributes } = {}) {
  let state = clean(steps || []);
  const datalist = attributeList(attributes);
  const ctx = { list: datalist.id, problems: new Map() };
  const formsPanel = h("div", { class: "steps-forms" });
  const rawId = uid("steps-json");
  const raw = h("textarea", { id: rawId, rows: 18, spellcheck: "false", dataset: { path: "$.steps" } });
  const rawPanel = h("div", { class: "steps-raw", hidden: true }, h("label", { for: rawId }, "Steps (JSON)"), raw);
  const toggle = h("button", { type: "button", class: "secondary shrink", id: "steps-raw-toggle", "aria-pressed": "false" }, "Edit as JSON");
  const renderForms = () => { ctx.problems.clear(); formsPanel.replaceChildren(listEditor(state, "$.steps", ctx)); };
  toggle.addEventListener("click", () => {
    if (rawPanel.hidden) {
      raw.value = json(clean(state));
      rawPanel.hidden = false; formsPanel.hidden = true;
      toggle.textContent = "Edit as forms"; toggle.setAttribute("aria-pressed", "true");
    } else {
      try { state = JSON.parse(raw.value); } catch (e) { raw.setAttribute("aria-invalid", "true"); throw new Error(`the steps are not valid JSON: ${e.message}`); }
      if (!Array.isArray(state)) state = [];
      renderForms();
      rawPanel.hidden = true; formsPanel.hidden = false;
      toggle.textContent = "Edit as JSON"; toggle.setAttribute("aria-pressed", "false");
    }
  });
  renderForms();
  const node = h("div", { class: "steps-editor" }, datalist.node,
    h("div", { class: "row" }, h("p", { class: "muted" }, "Steps run in order; a failed filter stops the list it is in (inside a branch: only that branch)."), toggle),
    formsPanel, rawPanel);
  return {
    node,
    value() {
      if (!rawPanel.hidden) {
        try { return JSON.parse(raw.value); } catch (e) { throw new Error(`the steps are not valid JSON: ${e.message}`); }
      }
      if (ctx.problems.size) throw new Error([...ctx.problems.values()].join("; "));
      return clean(state);
    },
  };
}

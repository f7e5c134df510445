// The steps editor. Contract (connector.js relies on it):
//   stepsEditor(steps, { attributes }) → { node, value() }
// ``steps`` is the config's steps array; value() returns the edited array (throws an
// Error with a message when the raw JSON does not parse). ``attributes`` is the
// connector's GET …/attributes answer, for pickers.
import { h, json, uid } from "../ui.js";

export function stepsEditor(steps, { attributes } = {}) {
  const id = uid("steps-json");
  const text = h("textarea", { id, rows: 18, "data-path": "$.config.steps" }, json(steps || []));
  const node = h("div", { class: "steps-editor" },
    h("label", { for: id }, "Steps (JSON)"), text);
  return {
    node,
    value() {
      try { return JSON.parse(text.value); } catch (e) { throw new Error(`the steps are not valid JSON: ${e.message}`); }
    },
  };
}

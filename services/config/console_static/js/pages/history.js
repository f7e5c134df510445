// Placeholder: filled in next.
import { h } from "../ui.js";

export async function render(view) {
  return h("div", {}, h("h1", {}, view), h("p", { class: "muted" }, "Not built yet."));
}

// One connector: its URL and settings, with the event log beside it.
import { api } from "../api.js";
import { h } from "../ui.js";
import { leave as leaveLog, renderLog } from "./events.js";

export function leave() { leaveLog(); }

export async function render(view, connectorId) {
  const c = await api.get(`/connectors/${connectorId}`);
  const url = h("input", { id: "connector-url", type: "text", readonly: true, value: c.url, "aria-label": "Connecting URL" });
  return h("div", {},
    h("p", {}, h("a", { href: "#/connectors" }, "← Connectors")),
    h("h1", {}, c.name),
    h("p", {}, h("a", { href: `#/connectors/${c.id}/stats` }, "Stats"), " · ", h("a", { href: `#/connectors/${c.id}/versions` }, "Versions")),
    h("div", { class: "split" },
      h("div", {}, h("section", { class: "card" }, h("h2", {}, "Connecting URL"), h("div", { class: "url" }, url))),
      renderLog(c.id)));
}

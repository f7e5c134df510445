// Connectors: the list with counts and status, and "Add".
import { api } from "../api.js";
import { fmtTime, h, showProblems } from "../ui.js";

async function row(c) {
  const [stats, log] = await Promise.all([
    api.get(`/connectors/${c.id}/stats`),
    api.get(`/connectors/${c.id}/events?limit=1`),
  ]);
  const last = log.items[0];
  const status = c.paused ? "paused" : last ? `last event ${fmtTime(last.received_at)}` : "no events yet";
  return h("tr", { class: "clickable", dataset: { connector: c.id }, onclick: () => { location.hash = `#/connectors/${c.id}`; } },
    h("td", {}, h("a", { href: `#/connectors/${c.id}` }, c.name)),
    h("td", { class: "num", dataset: { stat: "received" } }, stats.received),
    h("td", { class: "num", dataset: { stat: "succeeded" } }, stats.succeeded),
    h("td", { class: "num", dataset: { stat: "failed" } }, stats.failed),
    h("td", {}, status));
}

export async function render() {
  const { items } = await api.get("/connectors");
  const rows = await Promise.all(items.map(row));
  const name = h("input", { id: "new-connector-name", name: "name", type: "text", required: true, maxlength: 200 });
  const form = h("form", { class: "card row", "aria-label": "Add a connector",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const created = await api.post("/connectors", { name: name.value });
        location.hash = `#/connectors/${created.id}`;
      } catch (err) {
        showProblems(form, err.problems.length ? err.problems : [{ path: "$.name", message: err.message }]);
      }
    } },
    h("div", {}, h("label", { for: "new-connector-name" }, "New connector's name"), h("span", { dataset: { path: "$.name" } }, name)),
    h("button", { type: "submit", class: "shrink" }, "Add"));
  const table = items.length
    ? h("table", { id: "connectors" },
        h("thead", {}, h("tr", {}, ["Name", "Received", "Succeeded", "Failed", "Status"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))
    : h("p", { class: "muted" }, "No connectors yet: add one, then send it a webhook.");
  return h("div", {}, h("h1", {}, "Connectors"), form, table);
}

// The console's shell: login, navigation and a hash router. Each page module exports
// render(params) → Node (async) and may return a cleanup via page.leave().
import { login, logout, session } from "./api.js";
import { h, toast } from "./ui.js";

const ROUTES = [
  [/^#\/connectors$/, () => import("./pages/connectors.js"), "list"],
  [/^#\/connectors\/([^/]+)$/, () => import("./pages/connector.js"), "connector"],
  [/^#\/connectors\/([^/]+)\/events$/, () => import("./pages/events.js"), "log"],
  [/^#\/connectors\/([^/]+)\/events\/([^/]+)$/, () => import("./pages/events.js"), "event"],
  [/^#\/connectors\/([^/]+)\/stats$/, () => import("./pages/history.js"), "stats"],
  [/^#\/connectors\/([^/]+)\/versions$/, () => import("./pages/history.js"), "versions"],
  [/^#\/(channels|attributes|agents|contacts)$/, () => import("./pages/crm.js"), "crm"],
];

const main = document.getElementById("main");
let leaving = null;

function loginForm(next) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const problem = h("p", { class: "problem", role: "alert", hidden: true });
  const form = h("form", { class: "card", "aria-labelledby": "login-title",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await login(input.value);
        location.hash = next || "#/connectors";
        start();
      } catch (err) {
        problem.hidden = false;
        problem.textContent = err.message;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    } },
    h("h1", { id: "login-title" }, "Log in"),
    h("label", { for: "token" }, "Admin token"), input,
    h("p", { class: "muted" }, "make run prints it; it is kept in var/admin-token."),
    problem, h("button", { type: "submit" }, "Log in"));
  return form;
}

async function route() {
  if (leaving) { try { leaving(); } catch { /* the page is gone anyway */ } leaving = null; }
  const hash = location.hash || "#/connectors";
  for (const [pattern, load, view] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const page = await load();
      const node = await page.render(view, ...match.slice(1).map(decodeURIComponent));
      main.replaceChildren(node);
      leaving = page.leave || null;
      const title = main.querySelector("h1");
      document.title = `${title ? title.textContent + " · " : ""}Hookline console`;
    } catch (err) {
      if (err.status === 401) return;
      main.replaceChildren(h("div", { class: "card", role: "alert" }, h("h1", {}, "Something went wrong"), h("p", {}, err.message)));
    }
    return;
  }
  location.hash = "#/connectors";
}

async function start() {
  const nav = document.getElementById("nav");
  if (!(await session())) {
    nav.hidden = true;
    main.replaceChildren(loginForm(location.hash));
    main.querySelector("input").focus();
    return;
  }
  nav.hidden = false;
  await route();
}

window.addEventListener("hashchange", route);
window.addEventListener("hookline:logged-out", () => { toast("Session ended: log in again", true); start(); });
document.getElementById("logout").addEventListener("click", async () => { await logout(); start(); });
start();

// Small DOM helpers: build elements, show problems at their fields, toasts, tabs.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let ids = 0;
export function uid(prefix = "f") { ids += 1; return `${prefix}-${ids}`; }

// A labelled input: { label, name, value, type, options (select), help, rows (textarea) }.
export function field({ label, name, value = "", type = "text", options, help, rows, placeholder, required }) {
  const id = uid(name || "f");
  let input;
  if (options) {
    input = h("select", { id, name }, options.map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: String(v) === String(value) }, text);
    }));
  } else if (type === "textarea") {
    input = h("textarea", { id, name, rows: rows || 6, placeholder }, value ?? "");
  } else if (type === "checkbox") {
    input = h("input", { id, name, type, checked: Boolean(value) });
  } else {
    input = h("input", { id, name, type, value: value ?? "", placeholder, required });
  }
  const wrap = h("div", { class: "field", dataset: { field: name || "" } },
    h("label", { for: id }, label), input, help ? h("div", { class: "muted" }, help) : null);
  wrap.input = input;
  return wrap;
}

// 422 problems ({path, message}) shown beside the fields whose data-path matches.
export function showProblems(root, problems) {
  root.querySelectorAll(".problem").forEach((p) => p.remove());
  root.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const rest = [];
  for (const p of problems || []) {
    const target = root.querySelector(`[data-path="${CSS.escape(p.path)}"]`);
    if (target) {
      const input = target.matches("input,select,textarea") ? target : target.querySelector("input,select,textarea");
      if (input) input.setAttribute("aria-invalid", "true");
      target.after(h("p", { class: "problem", role: "alert" }, p.message));
    } else rest.push(p);
  }
  if (rest.length) {
    const list = h("ul", { class: "problem", role: "alert" }, rest.map((p) => h("li", {}, h("code", {}, p.path), " ", p.message)));
    root.prepend(h("div", { class: "problem" }, list));
  }
}

export function toast(message, bad = false) {
  const el = h("div", { class: bad ? "toast bad" : "toast" }, message);
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), bad ? 8000 : 3500);
}

// Tabs with roles and arrow keys: [{ id, label, render: () => Node }].
export function tabs(items, selected) {
  const panel = h("div", { role: "tabpanel" });
  const bar = h("div", { class: "tabs", role: "tablist" });
  const buttons = items.map((item) => h("button", {
    type: "button", role: "tab", id: `tab-${item.id}`, "aria-selected": "false",
    onclick: () => pick(item.id),
    onkeydown: (e) => {
      const i = items.indexOf(item);
      const next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : null;
      if (next !== null) { const it = items[(next + items.length) % items.length]; pick(it.id); document.getElementById(`tab-${it.id}`).focus(); }
    },
  }, item.label));
  bar.append(...buttons);
  function pick(id) {
    for (const [k, b] of buttons.entries()) b.setAttribute("aria-selected", String(items[k].id === id));
    panel.replaceChildren(items.find((i) => i.id === id).render());
    panel.setAttribute("aria-labelledby", `tab-${id}`);
  }
  pick(selected || items[0].id);
  return h("div", {}, bar, panel);
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

export function json(value) { return JSON.stringify(value, null, 2); }

export async function confirmDialog(title, body, { okLabel = "OK", extra } = {}) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-label": title },
      h("h2", {}, title), h("p", {}, body), extra || null,
      h("div", { class: "row" },
        h("button", { type: "button", class: "secondary shrink", onclick: () => { dialog.close(); resolve(false); } }, "Cancel"),
        h("button", { type: "button", class: "shrink", onclick: () => { dialog.close(); resolve(true); } }, okLabel)));
    document.body.append(dialog);
    // Escape closes a dialog too: that is a Cancel (resolving twice is a no-op).
    dialog.addEventListener("close", () => { dialog.remove(); resolve(false); });
    dialog.showModal();
  });
}

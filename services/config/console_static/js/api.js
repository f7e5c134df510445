// The console's one way to the server: the public API, with the session cookie (sent by
// the browser, unreadable here) and the session's CSRF token on every change.
let csrf = sessionStorage.getItem("hookline.csrf") || "";

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "";
    this.problems = err.problems || [];
    this.body = body;
  }
}

async function send(method, path, body, { raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (raw) return response;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { message: text } }; }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/console/")) window.dispatchEvent(new Event("hookline:logged-out"));
    throw new ApiError(response.status, data);
  }
  return data;
}

export const api = {
  get: (path) => send("GET", "/api/v1" + path),
  post: (path, body) => send("POST", "/api/v1" + path, body),
  put: (path, body) => send("PUT", "/api/v1" + path, body),
  patch: (path, body) => send("PATCH", "/api/v1" + path, body),
  delete: (path) => send("DELETE", "/api/v1" + path),
};

export async function login(token) {
  const data = await send("POST", "/console/login", { token });
  csrf = data.csrf;
  sessionStorage.setItem("hookline.csrf", csrf);
}

export async function session() {
  try {
    const data = await send("GET", "/console/session");
    csrf = data.csrf;
    sessionStorage.setItem("hookline.csrf", csrf);
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function logout() {
  await send("POST", "/console/logout");
  csrf = "";
  sessionStorage.removeItem("hookline.csrf");
}

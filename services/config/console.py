"""The web console (F13): static pages at ``/console/`` and the session they log in with.

The console is a client of the public API and nothing else: its pages call the same
``/api/v1`` routes as curl and the CLI, so there is no second write path.  What this
module adds is how a browser authenticates without keeping the admin token in
JavaScript: the token is exchanged once (``POST /console/login``) for a session cookie
that is ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no other site sends
it), and every request that changes state must also carry the session's CSRF token
in ``X-CSRF-Token``, which only the console's own pages learn.

Sessions are stateless, signed with a key derived from the admin token: any config
API replica checks them, and rotating the admin token ends every session.  Logout
clears the cookie; a copied cookie stays valid until it expires (``SESSION_S``), which
is the price of needing no session store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

import msgspec
from aiohttp import web

from libs.infra.http import ApiError
from services.config import models
from services.config.context import CTX
from services.config.openapi import Routes

STATIC = Path(__file__).with_name("console_static")
COOKIE = "hookline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What the console's pages may load and talk to: themselves only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Paths anyone may fetch: the pages themselves (they hold no data) and the login.
PUBLIC_PREFIXES = ("/console/",)


def _key(admin_token: str) -> bytes:
    return hashlib.sha256(b"hookline-console-session\0" + admin_token.encode()).digest()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def new_session(admin_token: str, now: float) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new session."""
    key = _key(admin_token)
    body = f"{int(now) + SESSION_S}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(key, body)}", _sign(key, "csrf." + body)


def session_of(admin_token: str, cookie: str | None, now: float) -> tuple[str, int] | None:
    """(CSRF token, seconds left) of a valid, unexpired session cookie, else None."""
    if not cookie or cookie.count(".") != 2:
        return None
    expires, nonce, mac = cookie.split(".")
    key = _key(admin_token)
    body = f"{expires}.{nonce}"
    if not hmac.compare_digest(_sign(key, body), mac):
        return None
    if not expires.isdigit() or int(expires) < now:
        return None
    return _sign(key, "csrf." + body), int(expires) - int(now)


def authorize_session(request: web.Request, admin_token: str) -> bool:
    """Whether the request carries a valid console session (and, for a change, its
    CSRF token); raises 403 for a session without the right CSRF token."""
    found = session_of(admin_token, request.cookies.get(COOKIE), time.time())
    if found is None:
        return False
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), found[0].encode()):
            raise ApiError(403, "csrf", f"a console change needs its {CSRF_HEADER} header")
    return True


def _cookie(request: web.Request, response: web.StreamResponse, value: str, max_age: int) -> None:
    # Secure whenever the browser came over TLS, directly or through a proxy that says
    # so: believing the header costs nothing, it can only make the cookie stricter.
    https = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    response.set_cookie(
        COOKIE, value, max_age=max_age, path="/", httponly=True, samesite="Strict", secure=https
    )


def _token(request: web.Request) -> str:
    return request.app[CTX].settings.admin_token


routes = Routes()
PAGE = "A console page (HTML; no data: the page calls the API)"


@routes.operation(
    "GET", "/", "home", "Redirects to the console", tag="console", public=True, status=302,
)  # fmt: skip
async def home(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": "/console/"})


@routes.operation(
    "GET", "/console", "consoleRedirect", "Redirects to /console/", tag="console",
    public=True, status=302,
)  # fmt: skip
async def console_redirect(request: web.Request) -> web.StreamResponse:
    return await home(request)


@routes.operation(
    "GET", "/console/", "console", PAGE, tag="console", public=True, returns=str,
    media_type="text/html",
)  # fmt: skip
async def index(request: web.Request) -> web.StreamResponse:
    return _static(STATIC / "index.html")


@routes.operation(
    "GET", "/console/assets/{file:.+}", "consoleAsset", "The console's scripts and styles",
    tag="console", public=True, returns=str, media_type="text/plain", errors=(404,),
)  # fmt: skip
async def asset(request: web.Request) -> web.StreamResponse:
    path = (STATIC / request.match_info["file"]).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        raise ApiError(404, "not_found", "no such console file")
    return _static(path)


@routes.operation(
    "POST", "/console/login", "consoleLogin", "Exchange the admin token for a session",
    tag="console", public=True, body=models.ConsoleLogin, returns=models.ConsoleSession,
    errors=(401, 422),
    description="Sets the `hookline_session` cookie (HttpOnly, SameSite=Strict; Secure "
    "over TLS). Changes made with it need the answer's `csrf` in `X-CSRF-Token`.",
)  # fmt: skip
async def login(request: web.Request, body: models.ConsoleLogin) -> web.StreamResponse:
    token = _token(request)
    if not hmac.compare_digest(body.token.encode("utf-8", "surrogateescape"), token.encode()):
        raise ApiError(401, "unauthorized", "that is not the admin token")
    cookie, csrf = new_session(token, time.time())
    session = models.ConsoleSession(csrf=csrf, expires_in=SESSION_S)
    response = web.json_response(msgspec.to_builtins(session))
    _cookie(request, response, cookie, SESSION_S)
    return response


@routes.operation(
    "GET", "/console/session", "consoleSession", "The current console session",
    tag="console", public=True, returns=models.ConsoleSession, errors=(401,),
)  # fmt: skip
async def session(request: web.Request) -> models.ConsoleSession:
    found = session_of(_token(request), request.cookies.get(COOKIE), time.time())
    if found is None:
        raise ApiError(401, "unauthorized", "not logged in")
    return models.ConsoleSession(csrf=found[0], expires_in=found[1])


@routes.operation(
    "POST", "/console/logout", "consoleLogout", "End the console session (clears the cookie)",
    tag="console", public=True, returns=models.ConsoleLoggedOut,
)  # fmt: skip
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.json_response(msgspec.to_builtins(models.ConsoleLoggedOut()))
    response.del_cookie(COOKIE, path="/")
    return response


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def _static(path: Path) -> web.Response:
    kind = _TYPES.get(path.suffix, "application/octet-stream")
    return web.Response(body=path.read_bytes(), headers={"Content-Type": kind, **SECURITY_HEADERS})

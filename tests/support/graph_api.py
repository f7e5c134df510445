"""A local server speaking the WhatsApp Cloud API: ``POST /{version}/{phone_number_id}/messages``.

It checks the bearer token and the request body the way the Graph API does (same
error shape), records every accepted message and answers with a ``wamid``.  It can be
told to fail the next requests with a given status, for retry tests::

    async with graph_api_server(token="t") as server:
        channel = WhatsAppChannel(..., api_base=server.base_url, allow_private=True)
        ...
        await server.wait_for(1, timeout_s=5)
        assert server.messages[0]["body"]["to"] == "14155550100"
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

GRAPH_VERSION = "v21.0"


class GraphApiServer:
    """State and handler; served by :func:`graph_api_server`.

    ``messages``: one dict per accepted request, in order:
    ``{"phone_number_id": ..., "id": "wamid...", "body": <the JSON body as received>}``.
    ``requests``: how many requests arrived (accepted, refused or failed on purpose).
    """

    def __init__(self, token: str, version: str = GRAPH_VERSION) -> None:
        self.token = token
        self.version = version
        self.messages: list[dict[str, Any]] = []
        self.requests = 0
        self.base_url = ""  # set once listening
        self._failures: list[tuple[int, float | None]] = []
        self._changed = asyncio.Condition()

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``Retry-After`` if given)."""
        self._failures.extend([(status, retry_after)] * n)

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``count`` messages were accepted; AssertionError at the deadline."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.messages) >= count), timeout_s
                )
            except TimeoutError:
                raise AssertionError(
                    f"Graph API server: {len(self.messages)} of {count} messages after {timeout_s}s"
                ) from None
            return list(self.messages)

    async def handle_messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        try:
            return await self._answer(request)
        finally:
            async with self._changed:
                self._changed.notify_all()

    async def _answer(self, request: web.Request) -> web.Response:
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return _error(status, *_FAILURES.get(status, _FAILURES[500]), headers=headers)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "Invalid OAuth access token - Cannot parse access token", 190, None)
        if request.match_info["version"] != self.version:
            return _error(
                400, f"Unknown path components: /{request.match_info['version']}", 2500, None
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _invalid("the request body is not JSON")
        problem = body_problem(body)
        if problem is not None:
            return _invalid(problem)
        message_id = f"wamid.{uuid.uuid4().hex}"
        self.messages.append(
            {
                "phone_number_id": request.match_info["phone_number_id"],
                "id": message_id,
                "body": body,
            }
        )
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": message_id}],
            }
        )


@asynccontextmanager
async def graph_api_server(
    token: str = "test-token", *, version: str = GRAPH_VERSION
) -> AsyncIterator[GraphApiServer]:
    """Serve a :class:`GraphApiServer` on 127.0.0.1 and a free port until the block ends."""
    server = GraphApiServer(token, version)
    app = web.Application()
    app.router.add_post("/{version}/{phone_number_id}/messages", server.handle_messages)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        server.base_url = f"http://{host}:{port}/{version}"
        yield server
    finally:
        await runner.cleanup()


def body_problem(body: Any) -> str | None:
    """What is wrong with a messages request body, or None (the checks the tests rely on)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be 'whatsapp'"
    if body.get("recipient_type", "individual") != "individual":
        return "recipient_type must be 'individual'"
    to = body.get("to")
    if not isinstance(to, str) or not to.lstrip("+").isdigit():
        return "to must be a phone number"
    kind = body.get("type", "text")
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("body"), str):
            return "text.body is required"
        if not 0 < len(text["body"]) <= 4096:
            return "text.body must have 1 to 4096 characters"
        if not isinstance(text.get("preview_url", False), bool):
            return "text.preview_url must be a boolean"
        return None
    if kind == "template":
        return _template_problem(body.get("template"))
    return f"unsupported message type {kind!r}"


def _template_problem(template: Any) -> str | None:
    if not isinstance(template, dict):
        return "template is required"
    if not isinstance(template.get("name"), str) or not template["name"]:
        return "template.name is required"
    language = template.get("language")
    if (
        not isinstance(language, dict)
        or not isinstance(language.get("code"), str)
        or not (language["code"])
    ):
        return "template.language.code is required"
    components = template.get("components", [])
    if not isinstance(components, list):
        return "template.components must be a list"
    for component in components:
        if not isinstance(component, dict) or component.get("type") not in (
            "header",
            "body",
            "button",
        ):
            return "template.components[].type must be header, body or button"
        for parameter in component.get("parameters", []):
            if (
                not isinstance(parameter, dict)
                or parameter.get("type") != "text"
                or not (isinstance(parameter.get("text"), str) and parameter["text"])
            ):
                return "template parameters must be {'type': 'text', 'text': <non-empty>}"
    return None


_FAILURES: dict[int, tuple[str, int, int | None]] = {
    429: ("(#130429) Rate limit hit", 130429, None),
    500: ("An unknown error has occurred.", 1, None),
    503: ("(#131016) Service unavailable", 131016, None),
}


def _invalid(details: str) -> web.Response:
    return _error(400, "(#100) Invalid parameter", 100, None, details=details)


def _error(
    status: int,
    message: str,
    code: int,
    subcode: int | None,
    *,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = uuid.uuid4().hex[:22]
    return web.json_response({"error": error}, status=status, headers=headers)


# The access token the end-to-end tests give their WhatsApp channels and the stand-in.
WA_TOKEN = "wa-test-token"

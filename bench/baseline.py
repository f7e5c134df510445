"""The baseline: a bare aiohttp app doing the least any JSON webhook receiver must do.

One POST handler reads the body, decodes it with msgspec (as ingest does) and answers
``{"ok": true}``. Run as its own process, on the same interpreter as Hookline:
``python -m bench.baseline --port PORT``.
"""

from __future__ import annotations

import argparse

import msgspec
from aiohttp import web

_decode = msgspec.json.Decoder().decode


async def receive(request: web.Request) -> web.Response:
    try:
        _decode(await request.read())
    except msgspec.DecodeError:
        return web.json_response({"ok": False}, status=400)
    return web.json_response({"ok": True})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/c/{token}", receive)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()

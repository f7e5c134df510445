"""One sandboxed template engine for messages, bodies, headers, URLs and responses.

Jinja2's ``SandboxedEnvironment`` (no attribute access to Python internals).  Templates
are compiled once and cached by source text, so a configuration version's templates are
compiled on first use and then reused for every event.  A missing attribute renders as
empty text and is reported back to the caller, which notes it in the execution log.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["Rendered", "TemplateError", "check", "render", "variables"]


class TemplateError(Exception):
    """A template that does not compile or fails while rendering (a permanent error)."""


class _RecordingUndefined(Undefined):
    """Renders as '' and remembers which name was missing."""

    __slots__ = ()

    def __str__(self) -> str:
        _MISSING.names.append(self._undefined_name or "?")
        return ""


class _MissingCollector:
    def __init__(self) -> None:
        self.names: list[str] = []


_MISSING = _MissingCollector()


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _env(undefined: type[Undefined]) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=undefined, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = _tojson
    return env


_ENV = _env(_RecordingUndefined)
_STRICT_ENV = _env(StrictUndefined)


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Any:
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"line {exc.lineno}: {exc.message}") from None


_BUILTIN_NAMES = frozenset(
    {
        "loop",
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
    }
)


class Rendered:
    __slots__ = ("missing", "text")

    def __init__(self, text: str, missing: list[str]) -> None:
        self.text = text
        self.missing = missing


def render(source: str, context: Mapping[str, Any]) -> Rendered:
    """Render ``source`` over ``context``. Plain strings skip Jinja entirely."""
    if "{" not in source:
        return Rendered(source, [])
    template = _compile(source)
    _MISSING.names = []  # rendering is synchronous: no other render interleaves here
    try:
        text = template.render(context)
    except TemplateError:
        raise
    except Exception as exc:  # sandbox violations, type errors in expressions
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return Rendered(text, list(dict.fromkeys(_MISSING.names)))


def check(source: str) -> str | None:
    """The syntax problem of a template, or None."""
    try:
        _compile(source)
    except TemplateError as exc:
        return str(exc)
    return None


def variables(source: str) -> list[str]:
    """Dotted attribute references a template reads, e.g. ``body.customer.name``.

    Used by validation and by remap warnings to see what a template depends on.
    """
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError:
        return []
    found: list[str] = []

    def dotted(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Getattr):
            base = dotted(node.node)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            base = dotted(node.node)
            if base is None:
                return None
            key = node.arg.value
            return f"{base}[{key}]" if isinstance(key, int) else f"{base}.{key}"
        return None

    # Names the template binds itself (loop targets, {% set %}) are not attributes.
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    local |= _BUILTIN_NAMES
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        path = dotted(node)
        if path and path.split(".", 1)[0].split("[", 1)[0] not in local:
            found.append(path)
    # Keep only the longest reference of each chain (body.a.b, not body and body.a).
    unique = sorted(set(found), key=len, reverse=True)
    out: list[str] = []
    for path in unique:
        if not any(o.startswith(path + ".") or o.startswith(path + "[") for o in out):
            out.append(path)
    return sorted(out)

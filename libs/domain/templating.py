"""One sandboxed template engine for messages, bodies, headers, URLs and responses.

Jinja2's ``ImmutableSandboxedEnvironment`` (no attribute access to Python internals, no
changing the context), with every size a webhook value can drive bounded: ``*`` and
``**``, size arguments of filters and string methods, output length, range(), loop
steps and wall-clock time of one render.  Templates
are compiled once and cached by source text, so a configuration version's templates are
compiled on first use and then reused for every event.  A missing attribute renders as
empty text and is reported back to the caller, which notes it in the execution log.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

__all__ = ["Rendered", "TemplateError", "check", "is_template", "render", "variables"]


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


# What one render may make.  A template comes from an operator but its values from
# any webhook sender, and it runs on the executor's and the config API's event loop.
MAX_OUTPUT_CHARS = 256 * 1024
MAX_SEQUENCE = 100_000  # items or characters a * may build
MAX_INT_BITS = 4_096  # of a ** or * result between integers
MAX_RANGE_ITEMS = 100_000  # summed over every range() of one render
MAX_LOOP_STEPS = 1_000_000  # iterations summed over every {% for %} of one render
RENDER_BUDGET_S = 0.5  # wall clock of one render, checked at loop steps and calls
_CLOCK_EVERY = 1024  # loop steps between two looks at the clock

# The name every {% for %} iterable is wrapped in (see ``_Bounded._parse``); a render
# binds it to its own ``_Budget``.
_STEPS = "__hookline_steps"


class _Bounded(ImmutableSandboxedEnvironment):
    """The immutable sandbox (no ``dict.update`` on ``system`` or ``body``), with ``*``
    and ``**`` checked before they run.  Intercepted operators are also never folded
    as constants at compile time, so saving ``{{ 7**(10**7) }}`` is quick too."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # A method such as ``'x'.center(n)`` or ``s.zfill(n)`` builds n characters
        # before the output cap could see them.
        if isinstance(getattr(__obj, "__self__", None), str | bytes | list):
            _check_sizes(args, kwargs)
        budget = __context.get(_STEPS)
        if isinstance(budget, _Budget):
            budget.clock()
        return super().call(__context, __obj, *args, **kwargs)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every loop's iterable goes through the render's budget, so nested loops over
        # a webhook's arrays stop at MAX_LOOP_STEPS or at the deadline, whichever first.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.Name(_STEPS, "load"), [loop.iter], [], None, None, lineno=loop.lineno
            )
        return tree


def _check_sizes(args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_SEQUENCE:
            raise SecurityError(f"a size argument over {MAX_SEQUENCE}")


def _sized(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with its size arguments checked (``center(10**8)``, ``indent(10**8)``)."""

    # Skip the value filtered, and the context or environment Jinja passes before it.
    leading = 2 if hasattr(function, "jinja_pass_arg") else 1

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_sizes(args[leading:], kwargs)
        return function(*args, **kwargs)

    return checked


def _bits(value: Any) -> float:
    return abs(value).bit_length() if isinstance(value, int) else 0.0


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int | float) and isinstance(exponent, int | float):
        size = abs(exponent) * max(math.log2(abs(base)) if base else 0.0, 1.0)
        if isinstance(base, int) and exponent > 0 and size > MAX_INT_BITS:
            raise SecurityError(f"** result too large (over {MAX_INT_BITS} bits)")
        if abs(exponent) > MAX_INT_BITS:
            raise SecurityError(f"** exponent too large (over {MAX_INT_BITS})")


def _check_product(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int):
            if len(seq) * count > MAX_SEQUENCE:
                raise SecurityError(f"* result too long (over {MAX_SEQUENCE} items)")
            return
    if _bits(left) + _bits(right) > MAX_INT_BITS:
        raise SecurityError(f"* result too large (over {MAX_INT_BITS} bits)")


class _RangeBudget:
    """``range`` with one budget for the whole render (the sandbox bounds each call)."""

    def __init__(self) -> None:
        self.left = MAX_RANGE_ITEMS

    def __call__(self, *args: int) -> range:
        items = range(*args)
        self.left -= len(items)
        if self.left < 0:
            raise SecurityError(f"range() over {MAX_RANGE_ITEMS} items in one render")
        return items


class _Budget:
    """The loop steps and the time one render may still take."""

    def __init__(self) -> None:
        self.steps = MAX_LOOP_STEPS
        self.deadline = time.monotonic() + RENDER_BUDGET_S

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"render took over {RENDER_BUDGET_S} s")

    def __call__(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for count, item in enumerate(iterable, 1):
            self.steps -= 1
            if self.steps < 0:
                raise SecurityError(f"loops over {MAX_LOOP_STEPS} steps in one render")
            if count % _CLOCK_EVERY == 0:
                self.clock()
            yield item


def _env(undefined: type[Undefined]) -> SandboxedEnvironment:
    env = _Bounded(undefined=undefined, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = _tojson
    env.filters = {name: _sized(f) for name, f in env.filters.items()}
    del env.globals["lipsum"]  # lipsum(n=10**5) writes megabytes of text
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
        _STEPS,
        "loop",
        "range",
        "dict",
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
        parts: list[str] = []
        size = 0
        # Streamed, so that a template making too much stops when it passes the cap.
        scope = {**context, "range": _RangeBudget(), _STEPS: _Budget()}
        for part in template.generate(scope):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(f"output longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(part)
        text = "".join(parts)
    except TemplateError:
        raise
    except Exception as exc:  # sandbox violations, type errors in expressions
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return Rendered(text, list(dict.fromkeys(_MISSING.names)))


def is_template(value: str) -> bool:
    """Whether a value that may be an attribute path or a template is a template: it
    holds ``{{`` or ``{%`` (a mapping value, say; a step's template fields always are)."""
    return "{{" in value or "{%" in value


def check(source: str) -> str | None:
    """The syntax problem of a template, or an operation on constants past the bounds
    (``{{ 'a' * 10**9 }}``, ``{{ 7**(10**7) }}``), or None.  Checked on the syntax
    tree, so saving such a template is refused at once instead of computing it."""
    try:
        _compile(source)
        for node in _ENV.parse(source).find_all((nodes.Pow, nodes.Mul)):
            _constant(node)
    except TemplateError as exc:
        return str(exc)
    except SecurityError as exc:
        return f"template is past a bound: {exc}"
    return None


class _NotConstant(Exception):
    pass


def _constant(node: nodes.Node) -> Any:
    """The value of a constant expression, with ``*`` and ``**`` checked first; None
    when the expression is not made of constants only."""
    try:
        return _value(node)
    except (_NotConstant, TypeError, ValueError, ArithmeticError):
        return None  # not constant, or an error the render will report


def _value(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg):
        return -_value(node.node)
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_value(item) for item in node.items]
    if isinstance(node, nodes.Pow | nodes.Mul | nodes.Add | nodes.Sub):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node, nodes.Pow):
            _check_power(left, right)
            return left**right
        if isinstance(node, nodes.Mul):
            _check_product(left, right)
            return left * right
        return left + right if isinstance(node, nodes.Add) else left - right
    raise _NotConstant


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

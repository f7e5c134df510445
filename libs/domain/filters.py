"""Filter evaluation (F7): conditions on attributes combined with AND/OR groups.

Pure: no I/O, no clock.  Every operator of ``libs.domain.connector.FilterOp`` is one entry of
:data:`OPS`; an operator gets the resolved attribute (or :data:`libs.domain.paths.MISSING`),
the condition's literal value and the options, and answers a bool or raises
:class:`ConditionError` when the two sides cannot be compared (the condition then
fails with that text instead of raising).

Coercion rules, shared by every operator:

- numbers: ``int``/``float`` (never ``bool``) and numeric strings (``"12"``,
  ``"-1.5e3"``; no underscores, no thousands separators).
- dates: ``datetime.fromisoformat`` strings (``"2024-05-01"``,
  ``"2024-05-01T10:00:00Z"``); a naive value is taken as UTC, a date as midnight.
- text: strings as they are, ``true``/``false`` for booleans, ``str()`` for numbers,
  JSON for lists and objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
import regex

from libs.domain import paths
from libs.domain.connector import Condition, Group
from libs.domain.values import as_text, is_blank

__all__ = [
    "OPS",
    "ConditionError",
    "ConditionResult",
    "FilterResult",
    "evaluate",
    "validate_group",
]


class ConditionResult(msgspec.Struct, frozen=True):
    """One evaluated condition, as written to the execution log.

    ``actual`` is ``None`` both for a null value and a missing attribute; ``missing``
    tells them apart.
    """

    attribute: str
    op: str
    expected: Any
    actual: Any
    passed: bool
    error: str | None = None
    missing: bool = False


class FilterResult(msgspec.Struct, frozen=True):
    passed: bool
    results: list[ConditionResult]  # every condition evaluated, depth first, in order
    failed: list[ConditionResult]  # the conditions that made the filter fail


class ConditionError(Exception):
    """The condition cannot be evaluated (incomparable values, bad pattern...)."""


@dataclass(frozen=True, slots=True)
class Options:
    case_sensitive: bool = False
    regex_timeout_s: float = 0.05


Op = Callable[[Any, Any, Options], bool]

# ---------------------------------------------------------------- coercion


def _number(value: Any) -> int | float | Decimal | None:
    """``value`` as a number, or ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or "_" in text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _datetime(value: Any) -> datetime | None:
    """``value`` as an aware datetime (naive -> UTC, date -> midnight), or ``None``."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _fold(text: str, options: Options) -> str:
    return text if options.case_sensitive else text.casefold()


def _same(actual: Any, expected: Any, options: Options) -> bool:
    """Equality as ``equals`` defines it (also used by ``in_list`` and list ``contains``)."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(actual, str) and isinstance(expected, str):
        return _fold(actual, options) == _fold(expected, options)
    a_num, e_num = _number(actual), _number(expected)
    if a_num is not None and e_num is not None:
        # At most one side is a string here: "1" equals 1, "1.0" equals 1.
        return a_num == e_num
    if isinstance(actual, str) or isinstance(expected, str):
        return _fold(as_text(actual), options) == _fold(as_text(expected), options)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected  # True is not 1
    return bool(actual == expected)


def _list_of(expected: Any) -> list[Any]:
    if isinstance(expected, list | tuple):
        return list(expected)
    if isinstance(expected, str):
        return [item.strip() for item in expected.split(",")]
    raise ConditionError(
        f"the value must be a list or a comma-separated string, got {type(expected).__name__}"
    )


def _affixas_text(value: Any, what: str) -> str:
    if value is None:
        raise ConditionError(f"{what} has no value to look for")
    if isinstance(value, list | dict):
        raise ConditionError(f"{what} needs text, got {type(value).__name__}")
    return as_text(value)


# ---------------------------------------------------------------- operators


def _equals(actual: Any, expected: Any, options: Options) -> bool:
    return actual is not paths.MISSING and _same(actual, expected, options)


def _contains(actual: Any, expected: Any, options: Options) -> bool:
    if actual is paths.MISSING or actual is None:
        return False
    if isinstance(actual, list | tuple):
        return any(_same(item, expected, options) for item in actual)
    if isinstance(actual, dict):
        return any(_same(key, expected, options) for key in actual)
    return _fold(_affixas_text(expected, "contains"), options) in _fold(as_text(actual), options)


def _starts_with(actual: Any, expected: Any, options: Options) -> bool:
    if actual is paths.MISSING or actual is None:
        return False
    text = _fold(_affixas_text(actual, "starts_with"), options)
    return text.startswith(_fold(_affixas_text(expected, "starts_with"), options))


def _ends_with(actual: Any, expected: Any, options: Options) -> bool:
    if actual is paths.MISSING or actual is None:
        return False
    text = _fold(_affixas_text(actual, "ends_with"), options)
    return text.endswith(_fold(_affixas_text(expected, "ends_with"), options))


def _ordered(actual: Any, expected: Any) -> tuple[Any, Any]:
    """Both sides as numbers or as datetimes, or :class:`ConditionError` saying why not."""
    if actual is paths.MISSING:
        raise ConditionError("attribute is missing")
    if actual is None:
        raise ConditionError("attribute is null")
    if expected is None:
        raise ConditionError("the condition has no value to compare with")
    a_num, e_num = _number(actual), _number(expected)
    if a_num is not None and e_num is not None:
        return a_num, e_num
    a_dt, e_dt = _datetime(actual), _datetime(expected)
    if a_dt is not None and e_dt is not None:
        return a_dt, e_dt
    raise ConditionError(
        f"cannot compare {actual!r} with {expected!r}: both must be numbers or both ISO 8601 dates"
    )


def _greater_than(actual: Any, expected: Any, options: Options) -> bool:
    a, e = _ordered(actual, expected)
    return bool(a > e)


def _less_than(actual: Any, expected: Any, options: Options) -> bool:
    a, e = _ordered(actual, expected)
    return bool(a < e)


def _greater_or_equal(actual: Any, expected: Any, options: Options) -> bool:
    a, e = _ordered(actual, expected)
    return bool(a >= e)


def _less_or_equal(actual: Any, expected: Any, options: Options) -> bool:
    a, e = _ordered(actual, expected)
    return bool(a <= e)


def _exists(actual: Any, expected: Any, options: Options) -> bool:
    return actual is not paths.MISSING


def _is_empty(actual: Any, expected: Any, options: Options) -> bool:
    return actual is paths.MISSING or is_blank(actual)


def _in_list(actual: Any, expected: Any, options: Options) -> bool:
    items = _list_of(expected)
    if actual is paths.MISSING:
        return False
    return any(_same(actual, item, options) for item in items)


def _regex(actual: Any, expected: Any, options: Options) -> bool:
    if not isinstance(expected, str):
        raise ConditionError(f"regex needs a pattern string, got {type(expected).__name__}")
    flags = 0 if options.case_sensitive else regex.IGNORECASE
    try:
        compiled = regex.compile(expected, flags)
    except regex.error as exc:
        raise ConditionError(f"invalid regex: {exc}") from None
    if actual is paths.MISSING or actual is None:
        return False
    try:
        return compiled.search(as_text(actual), timeout=options.regex_timeout_s) is not None
    except TimeoutError:
        raise ConditionError("regex timed out") from None


def _negate(op: Op) -> Op:
    def negated(actual: Any, expected: Any, options: Options) -> bool:
        return not op(actual, expected, options)

    return negated


OPS: dict[str, Op] = {
    "equals": _equals,
    "not_equals": _negate(_equals),
    "contains": _contains,
    "not_contains": _negate(_contains),
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "greater_than": _greater_than,
    "less_than": _less_than,
    "greater_or_equal": _greater_or_equal,
    "less_or_equal": _less_or_equal,
    "exists": _exists,
    "not_exists": _negate(_exists),
    "is_empty": _is_empty,
    "is_not_empty": _negate(_is_empty),
    "in_list": _in_list,
    "not_in_list": _negate(_in_list),
    "regex": _regex,
}

_NO_VALUE_OPS = frozenset({"exists", "not_exists", "is_empty", "is_not_empty"})
_ORDER_OPS = frozenset({"greater_than", "less_than", "greater_or_equal", "less_or_equal"})

# ---------------------------------------------------------------- evaluation


def evaluate_condition(
    condition: Condition, context: Mapping[str, Any], *, regex_timeout_s: float = 0.05
) -> ConditionResult:
    op = OPS.get(condition.op)
    try:
        actual = paths.lookup(context, condition.attribute)
    except paths.PathError as exc:
        return _result(condition, None, False, str(exc))
    missing = actual is paths.MISSING
    shown = None if missing else actual
    if op is None:
        return _result(condition, shown, False, f"unknown filter op {condition.op!r}", missing)
    options = Options(condition.case_sensitive, regex_timeout_s)
    try:
        passed = op(actual, condition.value, options)
    except ConditionError as exc:
        return _result(condition, shown, False, str(exc), missing)
    return _result(condition, shown, passed, None, missing)


def _result(
    condition: Condition, actual: Any, passed: bool, error: str | None, missing: bool = False
) -> ConditionResult:
    return ConditionResult(
        attribute=condition.attribute,
        op=condition.op,
        expected=condition.value,
        actual=actual,
        passed=passed,
        error=error,
        missing=missing,
    )


def _evaluate(
    group: Group, context: Mapping[str, Any], regex_timeout_s: float
) -> tuple[bool, list[ConditionResult], list[ConditionResult]]:
    results: list[ConditionResult] = []
    failed: list[ConditionResult] = []
    outcomes: list[bool] = []
    for condition in group.conditions:
        result = evaluate_condition(condition, context, regex_timeout_s=regex_timeout_s)
        results.append(result)
        outcomes.append(result.passed)
        if not result.passed:
            failed.append(result)
    for sub in group.groups:
        passed, sub_results, sub_failed = _evaluate(sub, context, regex_timeout_s)
        results.extend(sub_results)
        outcomes.append(passed)
        failed.extend(sub_failed)
    if not outcomes:
        passed = True
    elif group.match == "any":
        passed = any(outcomes)
    else:
        passed = all(outcomes)
    return passed, results, [] if passed else failed


def evaluate(
    group: Group, context: Mapping[str, Any], *, regex_timeout_s: float = 0.05
) -> FilterResult:
    """Evaluate every condition of ``group`` (no short-circuit, so the log is complete).

    ``failed`` lists the conditions that made the filter fail: in an ``all`` group the
    failing members, in an ``any`` group all of them; empty when the filter passes.
    """
    passed, results, failed = _evaluate(group, context, regex_timeout_s)
    return FilterResult(passed=passed, results=results, failed=failed)


# ---------------------------------------------------------------- static checks


def validate_group(group: Group, prefix: str) -> list[tuple[str, str]]:
    """Problems detectable without an event, as ``(json_path, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    for i, condition in enumerate(group.conditions):
        problems.extend(_validate_condition(condition, f"{prefix}.conditions[{i}]"))
    for j, sub in enumerate(group.groups):
        problems.extend(validate_group(sub, f"{prefix}.groups[{j}]"))
    return problems


def _validate_condition(condition: Condition, where: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        paths.parse(condition.attribute)
    except paths.PathError as exc:
        problems.append((f"{where}.attribute", str(exc)))
    op, value = condition.op, condition.value
    at_value = f"{where}.value"
    if op not in OPS:
        problems.append((f"{where}.op", f"unknown filter op {op!r}"))
    elif op in _NO_VALUE_OPS:
        pass
    elif value is None:
        problems.append((at_value, f"{op} needs a value"))
    elif op in ("in_list", "not_in_list"):
        if not isinstance(value, list | str):
            problems.append((at_value, f"{op} needs a list or a comma-separated string"))
    elif op == "regex":
        if not isinstance(value, str):
            problems.append((at_value, "regex needs a pattern string"))
        else:
            flags = 0 if condition.case_sensitive else regex.IGNORECASE
            try:
                regex.compile(value, flags)
            except regex.error as exc:
                problems.append((at_value, f"invalid regex: {exc}"))
    elif op in _ORDER_OPS:
        if _number(value) is None and _datetime(value) is None:
            problems.append((at_value, f"{op} needs a number or an ISO 8601 date, got {value!r}"))
    elif op in ("starts_with", "ends_with") and isinstance(value, list | dict):
        problems.append((at_value, f"{op} needs text, got {type(value).__name__}"))
    return problems

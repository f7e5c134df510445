"""Formatters (F7): date/time, text, numbers and lookup tables.

Pure: no I/O, no clock (``date.now`` uses the ``now`` it is given).  One registry maps
an op name to a function and the msgspec Struct its options decode into, so unknown,
missing or mistyped options are reported the same way by :func:`validate` (statically,
when the connector is saved) and by :func:`apply` (as :class:`FormatterError`).

The caller renders the step's ``input`` template and passes the result as ``value``;
values that are not strings (numbers, lists, ``None``) are accepted where they make sense.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from libs.domain.values import as_text, is_blank

__all__ = ["FormatterError", "apply", "known_ops", "validate"]


class FormatterError(Exception):
    """Permanent: the input or the options are wrong; retrying will not help."""


# ---------------------------------------------------------------- helpers


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _check_zone(name: str | None) -> None:
    if name is not None:
        _zone(name)


_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# Numbers a formatter computes with: up to 400 significant digits and a decimal
# exponent within ±400 (past a double's range either way).  A webhook value like
# "1e999999" would otherwise make a million-digit integer: seconds of CPU, and a
# number no log can hold.
MAX_DIGITS = 400
MAX_EXPONENT = 400


def _bounded(number: Decimal, op: str) -> Decimal:
    if not number.is_finite():
        raise FormatterError(f"{op} needs a finite number, got {number}")
    if number and (
        len(number.as_tuple().digits) > MAX_DIGITS or abs(number.adjusted()) > MAX_EXPONENT
    ):
        raise FormatterError(
            f"{op}: the number is out of range (more than {MAX_DIGITS} digits or an "
            f"exponent beyond ±{MAX_EXPONENT})"
        )
    return number


def _decimal(value: Any, op: str) -> Decimal:
    """A number or numeric string as an exact Decimal (floats via their shortest repr),
    within the bounds above."""
    if isinstance(value, bool):
        raise FormatterError(f"{op} needs a number, got a boolean")
    if isinstance(value, int):
        if value.bit_length() > MAX_DIGITS * 3.33:  # before making a Decimal of it
            raise FormatterError(f"{op}: the number has more than {MAX_DIGITS} digits")
        return _bounded(Decimal(value), op)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FormatterError(f"{op} needs a finite number, got {value!r}")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return _bounded(value, op)
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        if len(value) > 2 * MAX_DIGITS:  # before making a Decimal of it
            raise FormatterError(f"{op}: the number has more than {MAX_DIGITS} digits")
        return _bounded(Decimal(value.strip()), op)
    raise FormatterError(f"{op} needs a number, got {str(value)[:80]!r}")


def _plain(number: Decimal) -> int | float:
    """The JSON-friendly result: an int when integral, else a float."""
    number = _bounded(number, "the result")
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _timestamp(seconds: float) -> datetime:
    # Values past year 5138 in seconds are taken as milliseconds (JavaScript's Date.now()).
    if abs(seconds) >= 100_000_000_000:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise FormatterError(f"timestamp {seconds!r} is out of range") from None


def _to_datetime(value: Any, fmt: str | None, naive_zone: str, op: str) -> datetime:
    """Parse ``value``: strptime ``fmt`` if given, else ISO 8601 or a unix timestamp.

    Naive results are placed in ``naive_zone``.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, bool) or value is None:
        raise FormatterError(f"{op} needs a date, got {value!r}")
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise FormatterError(f"{op} needs a date, got {value!r}")
        return _timestamp(value)
    elif isinstance(value, str):
        text = value.strip()
        if fmt is not None:
            try:
                parsed = datetime.strptime(text, fmt)
            except ValueError as exc:
                raise FormatterError(f"{op}: {text!r} does not match {fmt!r}: {exc}") from None
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                if not _NUMERIC.fullmatch(text):
                    raise FormatterError(
                        f"{op} needs an ISO 8601 date or a unix timestamp, got {text!r}"
                    ) from None
                return _timestamp(float(text))
    else:
        raise FormatterError(f"{op} needs a date, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(naive_zone))
    return parsed


# ---------------------------------------------------------------- options


class _Opts(msgspec.Struct, forbid_unknown_fields=True):
    """Base for option structs; ``__post_init__`` holds the static checks."""


class _NoOpts(_Opts):
    pass


class _DateParse(_Opts):
    format: str | None = None  # strptime; default ISO 8601 or a unix timestamp
    tz: str = "UTC"  # zone assumed for naive values

    def __post_init__(self) -> None:
        _check_zone(self.tz)


class _DateFormat(_Opts):
    format: str  # strftime
    tz: str | None = None  # convert to this zone before formatting
    input_format: str | None = None
    from_: str = msgspec.field(default="UTC", name="from")  # zone for naive values

    def __post_init__(self) -> None:
        _check_zone(self.tz)
        _check_zone(self.from_)


class _DateConvert(_Opts):
    to: str
    from_: str = msgspec.field(default="UTC", name="from")
    input_format: str | None = None

    def __post_init__(self) -> None:
        _check_zone(self.to)
        _check_zone(self.from_)


class _DateAdd(_Opts):
    days: float = 0
    hours: float = 0
    minutes: float = 0
    from_: str = msgspec.field(default="UTC", name="from")
    input_format: str | None = None

    def __post_init__(self) -> None:
        _check_zone(self.from_)


class _DateNow(_Opts):
    tz: str = "UTC"
    format: str | None = None  # strftime; default ISO 8601

    def __post_init__(self) -> None:
        _check_zone(self.tz)


class _Replace(_Opts):
    find: str
    replace: str = ""

    def __post_init__(self) -> None:
        if not self.find:
            raise ValueError("`find` must not be empty")


class _Trim(_Opts):
    chars: str | None = None  # characters to strip; default whitespace


class _Split(_Opts):
    separator: str | None = None  # default: runs of whitespace
    index: int | None = None  # pick one item (negative counts from the end)
    trim: bool = True  # strip each item

    def __post_init__(self) -> None:
        if self.separator == "":
            raise ValueError("`separator` must not be empty")


class _Default(_Opts):
    value: Any


class _Truncate(_Opts):
    length: int
    suffix: str = ""  # e.g. "…"; counted in ``length``

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError("`length` must be >= 0")
        if len(self.suffix) > self.length:
            raise ValueError("`suffix` is longer than `length`")


class _Join(_Opts):
    separator: str = ", "


class _Operand(_Opts):
    operand: Decimal


class _Divide(_Opts):
    operand: Decimal

    def __post_init__(self) -> None:
        if self.operand == 0:
            raise ValueError("division by zero")


class _Round(_Opts):
    digits: int = 0


_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "INR": "₹",
    "JPY": "¥",
    "CNY": "CN¥",
    "AUD": "A$",
    "CAD": "CA$",
    "NZD": "NZ$",
    "SGD": "S$",
    "HKD": "HK$",
    "BRL": "R$",
    "MXN": "MX$",
    "KRW": "₩",
    "ILS": "₪",
    "NGN": "₦",
    "PHP": "₱",
    "VND": "₫",
    "TRY": "₺",
    "RUB": "₽",
    "UAH": "₴",
}
_ZERO_DECIMALS = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


class _Currency(_Opts):
    currency: str  # ISO 4217 code; unknown symbols are written as "CHF 1,234.50"
    decimals: int | None = None  # default: 2 (0 for JPY, KRW...)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"`currency` must be an ISO 4217 code like USD, got {self.currency!r}")
        if self.decimals is not None and not 0 <= self.decimals <= 10:
            raise ValueError("`decimals` must be between 0 and 10")


class _Lookup(_Opts):
    table: dict[str, Any]
    default: Any = None
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        if not self.case_sensitive:
            seen: dict[str, str] = {}
            for key in self.table:
                folded = key.strip().casefold()
                if folded in seen:
                    raise ValueError(
                        f"`table` keys {seen[folded]!r} and {key!r} collide "
                        "when case_sensitive is false"
                    )
                seen[folded] = key


# ---------------------------------------------------------------- date ops


def _date_parse(value: Any, o: _DateParse, now: datetime) -> str:
    return _to_datetime(value, o.format, o.tz, "date.parse").isoformat()


def _date_format(value: Any, o: _DateFormat, now: datetime) -> str:
    moment = _to_datetime(value, o.input_format, o.from_, "date.format")
    if o.tz is not None:
        moment = moment.astimezone(_zone(o.tz))
    return moment.strftime(o.format)


def _date_convert_tz(value: Any, o: _DateConvert, now: datetime) -> str:
    moment = _to_datetime(value, o.input_format, o.from_, "date.convert_tz")
    return moment.astimezone(_zone(o.to)).isoformat()


def _date_add(value: Any, o: _DateAdd, now: datetime) -> str:
    moment = _to_datetime(value, o.input_format, o.from_, "date.add")
    try:
        # Aware arithmetic is wall-clock: "+1 day" keeps the local time across DST.
        return (moment + timedelta(days=o.days, hours=o.hours, minutes=o.minutes)).isoformat()
    except OverflowError:
        raise FormatterError("date.add: result is out of range") from None


def _date_now(value: Any, o: _DateNow, now: datetime) -> str:
    moment = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).astimezone(_zone(o.tz))
    return moment.isoformat() if o.format is None else moment.strftime(o.format)


# ---------------------------------------------------------------- text ops


def _capitalize_words(text: str) -> str:
    # Capitalise after whitespace and hyphens only ("o'neil" -> "O'neil", not "O'Neil";
    # "they're" -> "They're", where str.title gives "They'Re").
    return re.sub(r"(^|[\s\-])(\w)", lambda m: m[1] + m[2].upper(), text.lower())


def _upper(value: Any, o: _NoOpts, now: datetime) -> str:
    return as_text(value).upper()


def _lower(value: Any, o: _NoOpts, now: datetime) -> str:
    return as_text(value).lower()


def _title(value: Any, o: _NoOpts, now: datetime) -> str:
    return _capitalize_words(as_text(value))


def _capitalize(value: Any, o: _NoOpts, now: datetime) -> str:
    return as_text(value).capitalize()


def _trim(value: Any, o: _Trim, now: datetime) -> str:
    return as_text(value).strip(o.chars)


def _replace(value: Any, o: _Replace, now: datetime) -> str:
    return as_text(value).replace(o.find, o.replace)


def _split(value: Any, o: _Split, now: datetime) -> list[str] | str | None:
    items = as_text(value).split(o.separator)
    if o.trim:
        items = [item.strip() for item in items]
    if o.index is None:
        return items
    if -len(items) <= o.index < len(items):
        return items[o.index]
    return None


def _default(value: Any, o: _Default, now: datetime) -> Any:
    return o.value if is_blank(value) else value


def _truncate(value: Any, o: _Truncate, now: datetime) -> str:
    text = as_text(value)
    if len(text) <= o.length:
        return text
    return text[: o.length - len(o.suffix)] + o.suffix


def _join(value: Any, o: _Join, now: datetime) -> str:
    if isinstance(value, list | tuple):
        return o.separator.join(as_text(item) for item in value)
    return as_text(value)  # a single item joins to itself


# ---------------------------------------------------------------- number ops


def _add(value: Any, o: _Operand, now: datetime) -> int | float:
    return _plain(_decimal(value, "number.add") + o.operand)


def _subtract(value: Any, o: _Operand, now: datetime) -> int | float:
    return _plain(_decimal(value, "number.subtract") - o.operand)


def _multiply(value: Any, o: _Operand, now: datetime) -> int | float:
    return _plain(_decimal(value, "number.multiply") * o.operand)


def _divide(value: Any, o: _Divide, now: datetime) -> int | float:
    return _plain(_decimal(value, "number.divide") / o.operand)


def _round(value: Any, o: _Round, now: datetime) -> int | float:
    number = _decimal(value, "number.round")
    return _plain(number.quantize(Decimal(1).scaleb(-o.digits), rounding=ROUND_HALF_UP))


def _currency(value: Any, o: _Currency, now: datetime) -> str:
    number = _decimal(value, "number.currency")
    decimals = o.decimals
    if decimals is None:
        decimals = 0 if o.currency in _ZERO_DECIMALS else 2
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    digits = f"{abs(rounded):,.{decimals}f}"
    symbol = _SYMBOLS.get(o.currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{o.currency} {digits}"


# ---------------------------------------------------------------- lookup


def _lookup(value: Any, o: _Lookup, now: datetime) -> Any:
    key = as_text(value).strip()
    if key in o.table:
        return o.table[key]
    if not o.case_sensitive:
        folded = key.casefold()
        for candidate, result in o.table.items():
            if candidate.strip().casefold() == folded:
                return result
    return o.default


# ---------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class _Formatter:
    fn: Callable[[Any, Any, datetime], Any]
    options: type[_Opts]


_REGISTRY: dict[str, _Formatter] = {
    "date.parse": _Formatter(_date_parse, _DateParse),
    "date.format": _Formatter(_date_format, _DateFormat),
    "date.convert_tz": _Formatter(_date_convert_tz, _DateConvert),
    "date.add": _Formatter(_date_add, _DateAdd),
    "date.now": _Formatter(_date_now, _DateNow),
    "text.upper": _Formatter(_upper, _NoOpts),
    "text.lower": _Formatter(_lower, _NoOpts),
    "text.title": _Formatter(_title, _NoOpts),
    "text.capitalize": _Formatter(_capitalize, _NoOpts),
    "text.trim": _Formatter(_trim, _Trim),
    "text.replace": _Formatter(_replace, _Replace),
    "text.split": _Formatter(_split, _Split),
    "text.default": _Formatter(_default, _Default),
    "text.truncate": _Formatter(_truncate, _Truncate),
    "text.join": _Formatter(_join, _Join),
    "number.add": _Formatter(_add, _Operand),
    "number.subtract": _Formatter(_subtract, _Operand),
    "number.multiply": _Formatter(_multiply, _Operand),
    "number.divide": _Formatter(_divide, _Divide),
    "number.round": _Formatter(_round, _Round),
    "number.currency": _Formatter(_currency, _Currency),
    "lookup": _Formatter(_lookup, _Lookup),
}


def known_ops() -> list[str]:
    return sorted(_REGISTRY)


def _options(op: str, options: Mapping[str, Any]) -> tuple[_Formatter, _Opts]:
    formatter = _REGISTRY.get(op)
    if formatter is None:
        raise FormatterError(f"unknown formatter op {op!r}")
    try:
        return formatter, msgspec.convert(dict(options), type=formatter.options)
    except msgspec.ValidationError as exc:
        raise FormatterError(f"{op}: invalid options: {exc}") from None


def validate(op: str, options: Mapping[str, Any]) -> list[str]:
    """Static problems with ``op`` and its ``options`` (empty when it can run)."""
    try:
        _options(op, options)
    except FormatterError as exc:
        return [str(exc)]
    return []


def apply(op: str, value: Any, options: Mapping[str, Any], *, now: datetime) -> Any:
    """Run formatter ``op`` on ``value``; :class:`FormatterError` on bad input or options."""
    formatter, parsed = _options(op, options)
    try:
        return formatter.fn(value, parsed, now)
    except FormatterError:
        raise
    except (ValueError, ArithmeticError) as exc:  # InvalidOperation, OverflowError, ...
        raise FormatterError(f"{op}: {exc}") from None

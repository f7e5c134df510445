"""Table-driven tests of the formatter core: every op, its edge cases and validation."""

# ruff: noqa: E501  (case tables keep one case per line; see the "# fmt: skip" blocks)

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.domain.formatters import FormatterError, apply, known_ops, validate

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
TS = 1714557600  # NOW as unix seconds

# (id, op, value, options, expected output)
CASES: list[tuple[str, str, Any, dict[str, Any], Any]] = [
    # date.parse
    ("parse-iso-z", "date.parse", "2024-05-01T10:00:00Z", {}, "2024-05-01T10:00:00+00:00"),
    ("parse-iso-offset-kept", "date.parse", "2024-05-01T10:00:00+02:00", {"tz": "Asia/Kolkata"}, "2024-05-01T10:00:00+02:00"),
    ("parse-date-only", "date.parse", "2024-05-01", {}, "2024-05-01T00:00:00+00:00"),
    ("parse-naive-in-tz", "date.parse", "2024-05-01T10:00:00", {"tz": "Asia/Kolkata"}, "2024-05-01T10:00:00+05:30"),
    ("parse-unix-int", "date.parse", TS, {}, "2024-05-01T10:00:00+00:00"),
    ("parse-unix-float", "date.parse", TS + 0.5, {}, "2024-05-01T10:00:00.500000+00:00"),
    ("parse-unix-string", "date.parse", str(TS), {}, "2024-05-01T10:00:00+00:00"),
    ("parse-unix-millis", "date.parse", TS * 1000, {}, "2024-05-01T10:00:00+00:00"),
    ("parse-strptime", "date.parse", "01/05/2024 10:00", {"format": "%d/%m/%Y %H:%M", "tz": "Europe/London"}, "2024-05-01T10:00:00+01:00"),
    ("parse-strptime-with-offset", "date.parse", "2024-05-01 10:00 -0700", {"format": "%Y-%m-%d %H:%M %z"}, "2024-05-01T10:00:00-07:00"),
    ("parse-surrounding-space", "date.parse", " 2024-05-01T10:00:00Z ", {}, "2024-05-01T10:00:00+00:00"),
    # date.format
    ("format-date", "date.format", "2024-05-01T10:00:00Z", {"format": "%Y-%m-%d"}, "2024-05-01"),
    ("format-in-tz", "date.format", "2024-05-01T10:00:00Z", {"format": "%d %b %Y %H:%M", "tz": "Asia/Kolkata"}, "01 May 2024 15:30"),
    ("format-crosses-day", "date.format", "2024-05-01T23:30:00Z", {"format": "%Y-%m-%d %H:%M %Z", "tz": "America/New_York"}, "2024-05-01 19:30 EDT"),
    ("format-input-format-from", "date.format", "05/01/2024 09:00", {"format": "%H:%M %z", "input_format": "%m/%d/%Y %H:%M", "from": "Asia/Kolkata"}, "09:00 +0530"),
    ("format-unix", "date.format", TS, {"format": "%H:%M"}, "10:00"),
    # date.convert_tz
    ("convert-utc-to-ist", "date.convert_tz", "2024-05-01T10:00:00Z", {"to": "Asia/Kolkata"}, "2024-05-01T15:30:00+05:30"),
    ("convert-naive-from", "date.convert_tz", "2024-05-01T10:00:00", {"from": "America/New_York", "to": "UTC"}, "2024-05-01T14:00:00+00:00"),
    ("convert-winter-offset", "date.convert_tz", "2024-01-15T12:00:00Z", {"to": "America/New_York"}, "2024-01-15T07:00:00-05:00"),
    ("convert-summer-offset", "date.convert_tz", "2024-07-15T12:00:00Z", {"to": "America/New_York"}, "2024-07-15T08:00:00-04:00"),
    # date.add
    ("add-day", "date.add", "2024-05-01T10:00:00Z", {"days": 1}, "2024-05-02T10:00:00+00:00"),
    ("add-negative-hours", "date.add", "2024-05-01T10:00:00Z", {"hours": -3}, "2024-05-01T07:00:00+00:00"),
    ("add-minutes", "date.add", "2024-05-01T10:00:00Z", {"minutes": 90}, "2024-05-01T11:30:00+00:00"),
    ("add-fraction-day", "date.add", "2024-05-01T10:00:00Z", {"days": 1.5}, "2024-05-02T22:00:00+00:00"),
    ("add-all", "date.add", "2024-05-01T10:00:00Z", {"days": -1, "hours": 2, "minutes": -30}, "2024-04-30T11:30:00+00:00"),
    ("add-over-dst-keeps-wall-clock", "date.add", "2024-03-09T12:00:00", {"days": 1, "from": "America/New_York"}, "2024-03-10T12:00:00-04:00"),
    ("add-month-end", "date.add", "2024-02-28", {"days": 1}, "2024-02-29T00:00:00+00:00"),
    # date.now
    ("now", "date.now", None, {}, "2024-05-01T10:00:00+00:00"),
    ("now-ignores-value", "date.now", "1999-01-01", {}, "2024-05-01T10:00:00+00:00"),
    ("now-tz", "date.now", "", {"tz": "Asia/Kolkata"}, "2024-05-01T15:30:00+05:30"),
    ("now-format", "date.now", "", {"tz": "America/New_York", "format": "%Y-%m-%d %H:%M"}, "2024-05-01 06:00"),
    # text
    ("upper", "text.upper", "héllo World", {}, "HÉLLO WORLD"),
    ("upper-number", "text.upper", 12, {}, "12"),
    ("upper-none", "text.upper", None, {}, ""),
    ("lower", "text.lower", "HeLLo", {}, "hello"),
    ("lower-bool", "text.lower", True, {}, "true"),
    ("title", "text.title", "aLICE smith", {}, "Alice Smith"),
    ("title-hyphen", "text.title", "mary-jane watson", {}, "Mary-Jane Watson"),
    ("title-apostrophe", "text.title", "they're here", {}, "They're Here"),
    ("title-keeps-spacing", "text.title", " a  b\tc", {}, " A  B\tC"),
    ("capitalize", "text.capitalize", "hELLO world", {}, "Hello world"),
    ("trim", "text.trim", "  hi \n", {}, "hi"),
    ("trim-chars", "text.trim", "--x-y--", {"chars": "-"}, "x-y"),
    ("replace", "text.replace", "a-b-c", {"find": "-", "replace": "+"}, "a+b+c"),
    ("replace-delete", "text.replace", "a-b-c", {"find": "-"}, "abc"),
    ("replace-case-sensitive", "text.replace", "Aa", {"find": "a", "replace": "x"}, "Ax"),
    ("split", "text.split", "a, b ,c", {"separator": ","}, ["a", "b", "c"]),
    ("split-no-trim", "text.split", "a, b ,c", {"separator": ",", "trim": False}, ["a", " b ", "c"]),
    ("split-whitespace", "text.split", " a  b\tc ", {}, ["a", "b", "c"]),
    ("split-index", "text.split", "day1|day2|day3", {"separator": "|", "index": 1}, "day2"),
    ("split-negative-index", "text.split", "a|b|c", {"separator": "|", "index": -1}, "c"),
    ("split-index-out-of-range", "text.split", "a|b", {"separator": "|", "index": 5}, None),
    ("split-empty", "text.split", "", {"separator": ","}, [""]),
    ("default-none", "text.default", None, {"value": "friend"}, "friend"),
    ("default-empty", "text.default", "", {"value": "friend"}, "friend"),
    ("default-whitespace", "text.default", "   ", {"value": "friend"}, "friend"),
    ("default-empty-list", "text.default", [], {"value": "friend"}, "friend"),
    ("default-kept", "text.default", "Alice", {"value": "friend"}, "Alice"),
    ("default-zero-kept", "text.default", 0, {"value": 1}, 0),
    ("default-false-kept", "text.default", False, {"value": True}, False),
    ("truncate", "text.truncate", "hello world", {"length": 5}, "hello"),
    ("truncate-suffix", "text.truncate", "hello world", {"length": 6, "suffix": "…"}, "hello…"),
    ("truncate-short", "text.truncate", "hi", {"length": 6, "suffix": "…"}, "hi"),
    ("truncate-exact", "text.truncate", "hello", {"length": 5, "suffix": "…"}, "hello"),
    ("truncate-zero", "text.truncate", "hello", {"length": 0}, ""),
    ("join", "text.join", ["a", 1, True], {"separator": "-"}, "a-1-true"),
    ("join-default-separator", "text.join", ["a", "b"], {}, "a, b"),
    ("join-scalar", "text.join", "a", {}, "a"),
    ("join-none", "text.join", None, {}, ""),
    # numbers
    ("add-decimal-exact", "number.add", 0.1, {"operand": 0.2}, 0.3),
    ("add-numeric-string", "number.add", "5", {"operand": 2}, 7),
    ("add-negative", "number.add", 5, {"operand": -7.5}, -2.5),
    ("add-string-operand", "number.add", 1, {"operand": "0.5"}, 1.5),
    ("add-big-int", "number.add", 10**20, {"operand": 1}, 10**20 + 1),
    ("subtract", "number.subtract", 10, {"operand": 2.5}, 7.5),
    ("subtract-string", "number.subtract", " 1.10 ", {"operand": 0.1}, 1),
    ("multiply", "number.multiply", "19.99", {"operand": 3}, 59.97),
    ("multiply-int", "number.multiply", 4, {"operand": 2.5}, 10),
    ("divide", "number.divide", 10, {"operand": 4}, 2.5),
    ("divide-exact-int", "number.divide", "9", {"operand": 3}, 3),
    ("divide-fraction", "number.divide", 1, {"operand": 8}, 0.125),
    ("round-half-up", "number.round", 2.675, {"digits": 2}, 2.68),
    ("round-default-digits", "number.round", 2.5, {}, 3),
    ("round-negative-half", "number.round", -2.5, {}, -3),
    ("round-string", "number.round", "3.14159", {"digits": 3}, 3.142),
    ("round-negative-digits", "number.round", 1234.5678, {"digits": -2}, 1200),
    ("round-exponent-string", "number.round", "1.5e3", {}, 1500),
    ("currency-usd", "number.currency", 1234.5, {"currency": "USD"}, "$1,234.50"),
    ("currency-eur", "number.currency", 1234.5, {"currency": "EUR"}, "€1,234.50"),
    ("currency-inr", "number.currency", "1234.5", {"currency": "INR"}, "₹1,234.50"),
    ("currency-gbp-millions", "number.currency", "1234567.891", {"currency": "GBP"}, "£1,234,567.89"),
    ("currency-negative", "number.currency", -5, {"currency": "USD"}, "-$5.00"),
    ("currency-half-up", "number.currency", 2.675, {"currency": "USD"}, "$2.68"),
    ("currency-small", "number.currency", 0.005, {"currency": "USD"}, "$0.01"),
    ("currency-zero", "number.currency", 0, {"currency": "USD"}, "$0.00"),
    ("currency-jpy-no-minor-unit", "number.currency", 1234.5, {"currency": "JPY"}, "¥1,235"),
    ("currency-decimals", "number.currency", 1234.5, {"currency": "USD", "decimals": 0}, "$1,235"),
    ("currency-decimals-3", "number.currency", 1.5, {"currency": "EUR", "decimals": 3}, "€1.500"),
    ("currency-no-symbol", "number.currency", 1234.5, {"currency": "CHF"}, "CHF 1,234.50"),
    # lookup
    ("lookup", "lookup", "day1", {"table": {"day1": "Welcome", "day2": "Tips"}}, "Welcome"),
    ("lookup-ci", "lookup", "DAY2", {"table": {"day1": "Welcome", "day2": "Tips"}}, "Tips"),
    ("lookup-trims", "lookup", " day2 ", {"table": {"day2": "Tips"}}, "Tips"),
    ("lookup-cs-miss", "lookup", "DAY2", {"table": {"day2": "Tips"}, "case_sensitive": True}, None),
    ("lookup-cs-hit", "lookup", "Day2", {"table": {"Day2": "Tips", "day2": "x"}, "case_sensitive": True}, "Tips"),
    ("lookup-default", "lookup", "day9", {"table": {"day1": "Welcome"}, "default": "Hello"}, "Hello"),
    ("lookup-missing-none", "lookup", "day9", {"table": {"day1": "Welcome"}}, None),
    ("lookup-number-key", "lookup", 1, {"table": {"1": "one"}}, "one"),
    ("lookup-structured-value", "lookup", "pro", {"table": {"pro": {"seats": 5}}}, {"seats": 5}),
    ("lookup-none-input", "lookup", None, {"table": {"": "blank"}}, "blank"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "value", "options", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_apply(op: str, value: Any, options: dict[str, Any], expected: Any) -> None:
    result = apply(op, value, options, now=NOW)
    assert result == expected
    assert type(result) is type(expected)
    assert validate(op, options) == []


def test_every_op_is_tested() -> None:
    assert sorted({case[1] for case in CASES}) == known_ops()


def test_known_ops_lists_every_family() -> None:
    ops = known_ops()
    assert ops == sorted(ops)
    assert {op.split(".")[0] for op in ops} == {"date", "text", "number", "lookup"}


def test_now_naive_is_utc() -> None:
    naive = datetime(2024, 5, 1, 10, 0, 0)
    assert apply("date.now", None, {"tz": "Asia/Kolkata"}, now=naive) == (
        "2024-05-01T15:30:00+05:30"
    )


def test_apply_does_not_mutate_options() -> None:
    options = {"table": {"a": 1}, "default": 0}
    apply("lookup", "A", options, now=NOW)
    assert options == {"table": {"a": 1}, "default": 0}


# (id, op, value, options, substring of the error)
ERRORS: list[tuple[str, str, Any, dict[str, Any], str]] = [
    ("unknown-op", "text.reverse", "x", {}, "unknown formatter op"),
    ("parse-garbage", "date.parse", "not a date", {}, "ISO 8601"),
    ("parse-bad-month", "date.parse", "2024-13-01", {}, "ISO 8601"),
    ("parse-none", "date.parse", None, {}, "needs a date"),
    ("parse-bool", "date.parse", True, {}, "needs a date"),
    ("parse-list", "date.parse", [1], {}, "needs a date"),
    ("parse-strptime-mismatch", "date.parse", "2024-05-01", {"format": "%d/%m/%Y"}, "does not match"),
    ("parse-huge-timestamp", "date.parse", 10**20, {}, "out of range"),
    ("format-unknown-zone", "date.format", "2024-05-01", {"format": "%Y", "tz": "Mars/Olympus"}, "unknown time zone"),
    ("convert-unknown-zone", "date.convert_tz", "2024-05-01", {"to": "Nowhere"}, "unknown time zone"),
    ("convert-zone-path", "date.convert_tz", "2024-05-01", {"to": "../../etc/passwd"}, "unknown time zone"),
    ("convert-missing-to", "date.convert_tz", "2024-05-01", {}, "to"),
    ("add-overflow", "date.add", "9999-12-31T00:00:00Z", {"days": 1}, "out of range"),
    ("add-bad-type", "date.add", "2024-05-01", {"days": "one"}, "days"),
    ("replace-no-find", "text.replace", "abc", {}, "find"),
    ("truncate-no-length", "text.truncate", "abc", {}, "length"),
    ("unknown-option", "text.upper", "abc", {"locale": "tr"}, "locale"),
    ("add-text", "number.add", "abc", {"operand": 1}, "needs a number"),
    ("add-thousands-separator", "number.add", "1,234", {"operand": 1}, "needs a number"),
    ("add-none", "number.add", None, {"operand": 1}, "needs a number"),
    ("add-empty", "number.add", "", {"operand": 1}, "needs a number"),
    ("add-bool", "number.add", True, {"operand": 1}, "boolean"),
    ("add-nan", "number.add", float("nan"), {"operand": 1}, "finite"),
    ("add-bad-operand", "number.add", 1, {"operand": "x"}, "operand"),
    ("add-no-operand", "number.add", 1, {}, "operand"),
    ("divide-by-zero", "number.divide", 1, {"operand": 0}, "division by zero"),
    ("round-text", "number.round", "pi", {}, "needs a number"),
    ("currency-text", "number.currency", "lots", {"currency": "USD"}, "needs a number"),
    ("currency-lowercase-code", "number.currency", 1, {"currency": "usd"}, "ISO 4217"),
    ("lookup-no-table", "lookup", "a", {}, "table"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "value", "options", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in ERRORS],
)
def test_apply_errors(op: str, value: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatterError) as info:
        apply(op, value, options, now=NOW)
    assert message in str(info.value)


# (id, op, options, substring of the single problem; None when valid)
VALIDATE: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("valid-format", "date.format", {"format": "%Y", "tz": "Europe/Paris", "from": "UTC"}, None),
    ("valid-lookup", "lookup", {"table": {"a": 1}, "default": None, "case_sensitive": True}, None),
    ("valid-currency", "number.currency", {"currency": "INR", "decimals": 2}, None),
    ("valid-utc-alias", "date.convert_tz", {"to": "Z"}, None),
    ("unknown-op", "text.shout", {}, "unknown formatter op 'text.shout'"),
    ("missing-format", "date.format", {}, "`format`"),
    ("missing-to", "date.convert_tz", {"from": "UTC"}, "`to`"),
    ("missing-operand", "number.multiply", {}, "`operand`"),
    ("missing-currency", "number.currency", {}, "`currency`"),
    ("missing-table", "lookup", {"default": 1}, "`table`"),
    ("missing-default-value", "text.default", {}, "`value`"),
    ("unknown-option", "text.trim", {"char": "x"}, "unknown field `char`"),
    ("wrong-type", "text.truncate", {"length": "ten"}, "$.length"),
    ("bool-is-not-int", "number.round", {"digits": True}, "$.digits"),
    ("table-not-dict", "lookup", {"table": ["a"]}, "$.table"),
    ("unknown-zone-parse", "date.parse", {"tz": "Atlantis/Capital"}, "unknown time zone 'Atlantis/Capital'"),
    ("unknown-zone-from", "date.add", {"days": 1, "from": "Moon/Base"}, "unknown time zone 'Moon/Base'"),
    ("unknown-zone-now", "date.now", {"tz": "Not/AZone"}, "unknown time zone"),
    ("empty-zone", "date.now", {"tz": ""}, "unknown time zone"),
    ("divide-by-zero", "number.divide", {"operand": 0}, "division by zero"),
    ("currency-code", "number.currency", {"currency": "dollars"}, "ISO 4217"),
    ("currency-decimals", "number.currency", {"currency": "USD", "decimals": 20}, "decimals"),
    ("split-empty-separator", "text.split", {"separator": ""}, "separator"),
    ("truncate-negative", "text.truncate", {"length": -1}, ">= 0"),
    ("truncate-suffix-too-long", "text.truncate", {"length": 1, "suffix": "..."}, "suffix"),
    ("replace-empty-find", "text.replace", {"find": ""}, "find"),
    ("lookup-case-collision", "lookup", {"table": {"Pro": 1, "pro": 2}}, "collide"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("op", "options", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in VALIDATE],
)
def test_validate(op: str, options: dict[str, Any], problem: str | None) -> None:
    problems = validate(op, options)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]
        assert op in problems[0]


def test_lookup_case_collision_allowed_when_case_sensitive() -> None:
    options = {"table": {"Pro": 1, "pro": 2}, "case_sensitive": True}
    assert validate("lookup", options) == []
    assert apply("lookup", "pro", options, now=NOW) == 2


@pytest.mark.parametrize(
    ("op", "value", "options"),
    [
        ("number.multiply", "1e999999", {"operand": 2}),
        ("number.multiply", "1e5000", {"operand": 1}),
        ("number.add", "1" * 1000, {"operand": 1}),
        ("number.add", 10**2000, {"operand": 1}),
        ("number.multiply", "1e300", {"operand": "1e300"}),
        ("number.round", "1e-999999", {"digits": 2}),
        ("number.currency", "9e999999", {"currency": "EUR"}),
    ],
)
def test_numbers_past_the_bounds_fail_the_step_clearly(
    op: str, value: Any, options: dict[str, Any]
) -> None:
    """Before: "1e999999" * 2 made a million-digit int (~17 s of CPU); "1e5000" an int
    the log could not encode. Now a FormatterError saying why, computed from a Decimal
    of at most MAX_DIGITS digits."""
    with pytest.raises(FormatterError) as caught:
        apply(op, value, options, now=NOW)
    assert "range" in str(caught.value) or "digits" in str(caught.value)


def test_numbers_inside_the_bounds_still_compute() -> None:
    assert apply("number.multiply", "1e300", {"operand": 10}, now=NOW) == 10**301
    assert apply("number.add", 2**64, {"operand": 1}, now=NOW) == 2**64 + 1
    assert apply("number.multiply", "2.5e-3", {"operand": 2}, now=NOW) == 0.005

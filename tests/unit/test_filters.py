"""Table-driven tests of the filter core: every operator, groups, static validation."""

# ruff: noqa: E501  (case tables keep one case per line; see the "# fmt: skip" blocks)

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from libs.domain.connector import Condition, Group
from libs.domain.filters import (
    OPS,
    ConditionResult,
    FilterResult,
    evaluate,
    validate_group,
)

CONTEXT: dict[str, Any] = {
    "body": {
        "name": "Alice Smith",
        "email": "Alice@Example.com",
        "amount": 125.5,
        "count": 3,
        "zero": 0,
        "flag": True,
        "null": None,
        "blank": "   ",
        "empty_list": [],
        "empty_obj": {},
        "tags": ["vip", "Repeat", 42],
        "meta": {"plan": "pro"},
        "created": "2024-05-01T10:00:00Z",
        "day": "2024-05-01",
        "price_text": "19.99",
        "items": [{"sku": "A-1"}, {"sku": "B-2"}],
        "word": "banana",
    },
    "custom_variables": {"value": "1", "step": "day2"},
    "headers": {"x-shop-id": "shop-42"},
    "method": "POST",
    "system": {"email": "ops@example.com"},
    "subscriber": {"city": "Pune"},
    "formatter": {},
}


def cond(attribute: str, op: Any, value: Any = None, cs: bool = False) -> Condition:
    return Condition(attribute=attribute, op=op, value=value, case_sensitive=cs)


def one(condition: Condition, context: dict[str, Any] | None = None) -> ConditionResult:
    result = evaluate(Group(conditions=[condition]), CONTEXT if context is None else context)
    assert len(result.results) == 1
    return result.results[0]


# (id, attribute, op, value, case_sensitive, expected pass)
CASES: list[tuple[str, str, str, Any, bool, bool]] = [
    # equals / not_equals
    ("eq-str-ci", "body.name", "equals", "alice smith", False, True),
    ("eq-str-cs", "body.name", "equals", "alice smith", True, False),
    ("eq-str-cs-exact", "body.name", "equals", "Alice Smith", True, True),
    ("eq-query-string-vs-int", "custom_variables.value", "equals", 1, False, True),
    ("eq-query-string-vs-float", "custom_variables.value", "equals", 1.0, False, True),
    ("eq-number-vs-numeric-string", "body.count", "equals", "3", False, True),
    ("eq-numbers", "body.amount", "equals", 125.5, False, True),
    ("eq-numbers-differ", "body.amount", "equals", 125, False, False),
    ("eq-bool-vs-text", "body.flag", "equals", "TRUE", False, True),
    ("eq-bool-is-not-one", "body.flag", "equals", 1, False, False),
    ("eq-list-index", "body.items[1].sku", "equals", "b-2", False, True),
    ("eq-header-dash", "headers.x-shop-id", "equals", "shop-42", False, True),
    ("eq-missing", "body.nope", "equals", "x", False, False),
    ("eq-null-vs-text", "body.null", "equals", "", False, False),
    ("ne-missing", "body.nope", "not_equals", "x", False, True),
    ("ne-differs", "custom_variables.step", "not_equals", "day1", False, True),
    ("ne-same-ci", "custom_variables.step", "not_equals", "DAY2", False, False),
    ("ne-same-cs", "custom_variables.step", "not_equals", "DAY2", True, True),
    # contains / not_contains
    ("contains-substring-ci", "body.email", "contains", "example", False, True),
    ("contains-substring-cs", "body.email", "contains", "example", True, False),
    ("contains-list-member-ci", "body.tags", "contains", "repeat", False, True),
    ("contains-list-member-cs", "body.tags", "contains", "repeat", True, False),
    ("contains-list-number", "body.tags", "contains", "42", False, True),
    ("contains-list-not-substring", "body.tags", "contains", "vi", False, False),
    ("contains-dict-key", "body.meta", "contains", "plan", False, True),
    ("contains-number-text", "body.amount", "contains", "25.", False, True),
    ("contains-missing", "body.nope", "contains", "a", False, False),
    ("contains-null", "body.null", "contains", "a", False, False),
    ("not-contains", "body.email", "not_contains", "gmail", False, True),
    ("not-contains-present", "body.email", "not_contains", "EXAMPLE", False, False),
    ("not-contains-missing", "body.nope", "not_contains", "a", False, True),
    # starts_with / ends_with
    ("starts-ci", "body.name", "starts_with", "ali", False, True),
    ("starts-cs", "body.name", "starts_with", "ali", True, False),
    ("starts-no", "body.name", "starts_with", "Bob", False, False),
    ("starts-missing", "body.nope", "starts_with", "a", False, False),
    ("ends-ci", "body.email", "ends_with", ".COM", False, True),
    ("ends-cs", "body.email", "ends_with", ".COM", True, False),
    ("ends-number", "body.count", "ends_with", 3, False, True),
    # ordering: numbers
    ("gt-number", "body.amount", "greater_than", 100, False, True),
    ("gt-number-false", "body.amount", "greater_than", 125.5, False, False),
    ("ge-number-equal", "body.amount", "greater_or_equal", 125.5, False, True),
    ("lt-numeric-string", "body.price_text", "less_than", 20, False, True),
    ("lt-numeric-string-value", "body.count", "less_than", "10", False, True),
    ("le-number", "body.count", "less_or_equal", 3, False, True),
    ("le-number-false", "body.count", "less_or_equal", 2.99, False, False),
    ("gt-zero", "body.zero", "greater_than", -1, False, True),
    # ordering: dates
    ("gt-datetime-z", "body.created", "greater_than", "2024-05-01T09:59:59Z", False, True),
    (
        "gt-datetime-offset",
        "body.created",
        "greater_than",
        "2024-05-01T12:00:00+03:00",
        False,
        True,
    ),
    ("lt-datetime-naive-is-utc", "body.created", "less_than", "2024-05-01T10:00:01", False, True),
    (
        "ge-datetime-equal-instant",
        "body.created",
        "greater_or_equal",
        "2024-05-01T10:00:00+00:00",
        False,
        True,
    ),
    ("gt-date-only", "body.day", "greater_than", "2024-04-30", False, True),
    ("le-date-vs-datetime", "body.day", "less_or_equal", "2024-05-01T00:00:00Z", False, True),
    ("gt-datetime-vs-date", "body.created", "greater_than", "2024-05-01", False, True),
    # exists / not_exists
    ("exists", "body.name", "exists", None, False, True),
    ("exists-null", "body.null", "exists", None, False, True),
    ("exists-missing", "body.nope", "exists", None, False, False),
    ("exists-index-out-of-range", "body.items[5]", "exists", None, False, False),
    ("not-exists-missing", "body.nope.deeper", "not_exists", None, False, True),
    ("not-exists-null", "body.null", "not_exists", None, False, False),
    # is_empty / is_not_empty
    ("empty-missing", "body.nope", "is_empty", None, False, True),
    ("empty-null", "body.null", "is_empty", None, False, True),
    ("empty-whitespace", "body.blank", "is_empty", None, False, True),
    ("empty-list", "body.empty_list", "is_empty", None, False, True),
    ("empty-obj", "body.empty_obj", "is_empty", None, False, True),
    ("empty-zero-is-not", "body.zero", "is_empty", None, False, False),
    ("empty-text-is-not", "body.name", "is_empty", None, False, False),
    ("not-empty-text", "body.name", "is_not_empty", None, False, True),
    ("not-empty-false-is-value", "body.flag", "is_not_empty", None, False, True),
    ("not-empty-whitespace", "body.blank", "is_not_empty", None, False, False),
    ("not-empty-missing", "body.nope", "is_not_empty", None, False, False),
    # in_list / not_in_list
    ("in-list", "custom_variables.step", "in_list", ["day1", "day2"], False, True),
    ("in-list-ci", "custom_variables.step", "in_list", ["DAY2"], False, True),
    ("in-list-cs", "custom_variables.step", "in_list", ["DAY2"], True, False),
    ("in-list-comma-string", "custom_variables.step", "in_list", "day1, day2 ,day3", False, True),
    ("in-list-numbers", "custom_variables.value", "in_list", [1, 2], False, True),
    ("in-list-no", "custom_variables.step", "in_list", ["day1", "day3"], False, False),
    ("in-list-missing", "body.nope", "in_list", ["a"], False, False),
    ("not-in-list", "custom_variables.step", "not_in_list", "day1,day3", False, True),
    ("not-in-list-present", "custom_variables.step", "not_in_list", ["day2"], False, False),
    ("not-in-list-missing", "body.nope", "not_in_list", ["a"], False, True),
    # regex
    ("regex", "custom_variables.step", "regex", r"^day\d$", False, True),
    ("regex-ci", "body.name", "regex", r"^alice\b", False, True),
    ("regex-cs", "body.name", "regex", r"^alice\b", True, False),
    ("regex-search-not-match", "body.email", "regex", r"example\.com$", False, True),
    ("regex-number", "body.count", "regex", r"^\d+$", False, True),
    ("regex-no", "body.name", "regex", r"^\d+$", False, False),
    ("regex-missing", "body.nope", "regex", ".*", False, False),
    ("regex-null", "body.null", "regex", ".*", False, False),
]


@pytest.mark.parametrize(
    ("attribute", "op", "value", "cs", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_operator(attribute: str, op: str, value: Any, cs: bool, expected: bool) -> None:
    result = one(cond(attribute, op, value, cs))
    assert result.passed is expected, result
    assert result.error is None
    assert result.op == op
    assert result.attribute == attribute
    assert result.expected == value


def test_every_filter_op_is_tested() -> None:
    assert {case[2] for case in CASES} == set(OPS)


def test_every_filter_op_of_the_model_is_implemented() -> None:
    from typing import get_args

    from libs.domain.connector import FilterOp

    assert set(get_args(FilterOp)) == set(OPS)


# (id, attribute, op, value, substring of the error)
ERROR_CASES: list[tuple[str, str, str, Any, str]] = [
    ("gt-text-vs-number", "body.name", "greater_than", 5, "cannot compare"),
    ("lt-text-vs-date", "body.word", "less_than", "2024-01-01", "cannot compare"),
    ("ge-number-vs-date", "body.count", "greater_or_equal", "2024-01-01T00:00:00Z", "both"),
    ("le-missing", "body.nope", "less_or_equal", 1, "missing"),
    ("gt-null", "body.null", "greater_than", 1, "null"),
    ("gt-no-value", "body.count", "greater_than", None, "no value"),
    ("gt-list", "body.tags", "greater_than", 1, "cannot compare"),
    ("in-list-bad-value", "custom_variables.step", "in_list", 5, "list"),
    ("not-in-list-bad-value", "custom_variables.step", "not_in_list", {"a": 1}, "list"),
    ("regex-invalid", "body.name", "regex", "(unclosed", "invalid regex"),
    ("regex-not-text", "body.name", "regex", 5, "pattern"),
    ("starts-with-list", "body.tags", "starts_with", "v", "needs text"),
    ("contains-no-value", "body.name", "contains", None, "no value"),
    ("bad-path", "body..name", "equals", "x", "invalid attribute path"),
    ("unknown-op", "body.name", "sounds_like", "x", "unknown filter op"),
]


@pytest.mark.parametrize(
    ("attribute", "op", "value", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_operator_error_fails_condition(attribute: str, op: str, value: Any, message: str) -> None:
    result = one(cond(attribute, op, value))
    assert result.passed is False
    assert result.error is not None
    assert message in result.error


def test_actual_value_and_missing_flag_are_recorded() -> None:
    present = one(cond("body.amount", "greater_than", 200))
    assert (present.actual, present.missing, present.passed) == (125.5, False, False)
    null = one(cond("body.null", "equals", "x"))
    assert (null.actual, null.missing) == (None, False)
    missing = one(cond("body.nope", "equals", "x"))
    assert (missing.actual, missing.missing) == (None, True)


def test_results_encode_to_json_for_the_log() -> None:
    result = evaluate(Group(conditions=[cond("body.nope", "equals", "x")]), CONTEXT)
    decoded = msgspec.json.decode(msgspec.json.encode(result), type=FilterResult)
    assert decoded == result


def test_regex_timeout_fails_with_error() -> None:
    # Exponential backtracking even for the `regex` module (which handles `(a+)+$`).
    context = {"body": {"text": "a" * 40 + "!"}}
    result = one(cond("body.text", "regex", r"(a|aa)+$"), context)
    assert result.passed is False
    assert result.error == "regex timed out"


def test_regex_timeout_is_configurable() -> None:
    context = {"body": {"text": "a" * 40 + "!"}}
    group = Group(conditions=[cond("body.text", "regex", r"(a|aa)+$")])
    result = evaluate(group, context, regex_timeout_s=0.001)
    assert result.failed[0].error == "regex timed out"


def test_nested_quantifier_without_blowup_still_answers() -> None:
    context = {"body": {"text": "a" * 30 + "!"}}
    result = one(cond("body.text", "regex", r"(a+)+$"), context)
    assert result.error is None
    assert result.passed is False


# ---------------------------------------------------------------- groups

T = cond("custom_variables.step", "equals", "day2")  # true
F = cond("custom_variables.step", "equals", "day1")  # false
F2 = cond("body.count", "greater_than", 10)  # false
E = cond("body.name", "greater_than", 1)  # fails with an error


# (id, group, passed, number of results, failed conditions)
GROUP_CASES: list[tuple[str, Group, bool, int, list[Condition]]] = [
    ("empty-all", Group(), True, 0, []),
    ("empty-any", Group(match="any"), True, 0, []),
    ("all-true", Group(conditions=[T, T]), True, 2, []),
    ("all-one-false", Group(conditions=[T, F, T]), False, 3, [F]),
    ("all-two-false", Group(conditions=[F, T, F2]), False, 3, [F, F2]),
    ("any-one-true", Group(match="any", conditions=[F, T, F2]), True, 3, []),
    ("any-none-true", Group(match="any", conditions=[F, F2]), False, 2, [F, F2]),
    ("all-error", Group(conditions=[T, E]), False, 2, [E]),
    ("any-error-rescued", Group(match="any", conditions=[E, T]), True, 2, []),
    (
        "all-with-true-any",
        Group(conditions=[T], groups=[Group(match="any", conditions=[F, T])]),
        True,
        3,
        [],
    ),
    (
        "all-with-false-any",
        Group(conditions=[T], groups=[Group(match="any", conditions=[F, F2])]),
        False,
        3,
        [F, F2],
    ),
    (
        "any-with-true-all",
        Group(match="any", conditions=[F], groups=[Group(conditions=[T, T])]),
        True,
        3,
        [],
    ),
    (
        "any-all-false",
        Group(match="any", conditions=[F], groups=[Group(conditions=[T, F2])]),
        False,
        3,
        [F, F2],
    ),
    (
        "all-nested-passing-group-not-blamed",
        Group(
            conditions=[F],
            groups=[Group(match="any", conditions=[F2, T]), Group(conditions=[T])],
        ),
        False,
        4,
        [F],
    ),
    (
        "deep-nesting",
        Group(
            match="any",
            groups=[
                Group(conditions=[T], groups=[Group(match="any", conditions=[F, F2])]),
                Group(conditions=[F]),
            ],
        ),
        False,
        4,
        [F, F2, F],
    ),
    ("empty-nested-group-passes", Group(groups=[Group()], conditions=[T]), True, 1, []),
]


@pytest.mark.parametrize(
    ("group", "passed", "count", "failed"),
    [pytest.param(*case[1:], id=case[0]) for case in GROUP_CASES],
)
def test_group(group: Group, passed: bool, count: int, failed: list[Condition]) -> None:
    result = evaluate(group, CONTEXT)
    assert result.passed is passed
    assert len(result.results) == count  # no short-circuit: every condition is logged
    assert [(r.attribute, r.op, r.expected) for r in result.failed] == [
        (c.attribute, c.op, c.value) for c in failed
    ]
    assert all(not r.passed for r in result.failed)


def test_results_are_in_depth_first_order() -> None:
    group = Group(
        conditions=[cond("body.a", "exists"), cond("body.c", "exists")],
        groups=[Group(conditions=[cond("body.b", "exists")]), Group(conditions=[])],
    )
    result = evaluate(group, CONTEXT)
    assert [r.attribute for r in result.results] == ["body.a", "body.c", "body.b"]


def test_drip_campaign_filters_on_same_url() -> None:
    """F7: `?value=day1|day2|day3` picks one message, each behind its own filter."""
    filters = {
        f"day{n}": Group(conditions=[cond("custom_variables.value", "equals", f"day{n}")])
        for n in (1, 2, 3)
    }
    context = {**CONTEXT, "custom_variables": {"value": "day2"}}
    passing = [name for name, group in filters.items() if evaluate(group, context).passed]
    assert passing == ["day2"]


def test_group_decoded_from_json() -> None:
    raw = b"""{"match": "any", "conditions": [
        {"attribute": "body.amount", "op": "greater_than", "value": "100"},
        {"attribute": "body.email", "op": "ends_with", "value": "@gmail.com"}]}"""
    group = msgspec.json.decode(raw, type=Group)
    assert evaluate(group, CONTEXT).passed is True


# ---------------------------------------------------------------- validate_group


# (id, group, expected problems as (json path, substring of message))
VALIDATE_CASES: list[tuple[str, Group, list[tuple[str, str]]]] = [
    (
        "valid",
        Group(
            conditions=[
                cond("body.a", "equals", "x"),
                cond("body.a", "exists"),
                cond("body.a", "is_empty"),
                cond("body.a", "in_list", ["a"]),
                cond("body.a", "in_list", "a,b"),
                cond("body.a", "regex", r"^\d+$"),
                cond("body.a", "greater_than", 5),
                cond("body.a", "greater_than", "5.5"),
                cond("body.a", "less_than", "2024-01-01T00:00:00Z"),
                cond('body["a.b"][0]', "equals", 1),
            ]
        ),
        [],
    ),
    ("bad-regex", Group(conditions=[cond("body.a", "regex", "(")]), [("$.when.conditions[0].value", "invalid regex")]),
    ("regex-not-text", Group(conditions=[cond("body.a", "regex", 1)]), [("$.when.conditions[0].value", "pattern")]),
    ("in-list-number", Group(conditions=[cond("body.a", "in_list", 3)]), [("$.when.conditions[0].value", "list")]),
    ("not-in-list-dict", Group(conditions=[cond("body.a", "not_in_list", {})]), [("$.when.conditions[0].value", "list")]),
    ("equals-none", Group(conditions=[cond("body.a", "equals")]), [("$.when.conditions[0].value", "needs a value")]),
    ("gt-none", Group(conditions=[cond("body.a", "greater_than")]), [("$.when.conditions[0].value", "needs a value")]),
    ("gt-text", Group(conditions=[cond("body.a", "greater_than", "abc")]), [("$.when.conditions[0].value", "number or an ISO 8601")]),
    ("starts-list", Group(conditions=[cond("body.a", "starts_with", ["a"])]), [("$.when.conditions[0].value", "needs text")]),
    ("bad-path", Group(conditions=[cond("body..a", "equals", 1)]), [("$.when.conditions[0].attribute", "invalid attribute path")]),
    ("path-whitespace", Group(conditions=[cond(" body.a", "exists")]), [("$.when.conditions[0].attribute", "invalid attribute path")]),
    ("unknown-op", Group(conditions=[cond("body.a", "like", 1)]), [("$.when.conditions[0].op", "unknown filter op")]),
    (
        "nested-and-several",
        Group(
            conditions=[cond("body.a", "exists"), cond("body.a", "regex", "[")],
            groups=[Group(), Group(conditions=[cond("body.a", "equals", 1), cond("x..y", "in_list", 1)])],
        ),
        [
            ("$.when.conditions[1].value", "invalid regex"),
            ("$.when.groups[1].conditions[1].attribute", "invalid attribute path"),
            ("$.when.groups[1].conditions[1].value", "list"),
        ],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("group", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in VALIDATE_CASES],
)
def test_validate_group(group: Group, expected: list[tuple[str, str]]) -> None:
    problems = validate_group(group, "$.when")
    assert [path for path, _ in problems] == [path for path, _ in expected]
    for (_, message), (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in message


def test_statically_valid_regex_also_evaluates() -> None:
    group = Group(conditions=[cond("body.word", "regex", r"(?<=b)an")])
    assert validate_group(group, "$") == []
    assert evaluate(group, CONTEXT).passed is True

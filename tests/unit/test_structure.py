"""libs.domain.structure: inference, merging, drift and bounds; golden tests on real GitHub
payloads.

Golden files live in tests/golden/structure/<payload>.json; regenerate them with
``.venv/bin/python tests/golden/regen_structure.py`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from libs.domain.paths import join, parse, resolve
from libs.domain.structure import (
    DEFAULT_LIMITS,
    DRAFT_2020_12,
    TRUNCATED_KEYWORD,
    Drift,
    DriftChecker,
    Field,
    Limits,
    Structure,
    StructureError,
    TypeChange,
    drift,
    fields_of,
    infer,
    merge,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PAYLOADS_DIR = PROJECT_ROOT.parent / "shared" / "payloads" / "github"
GOLDEN_DIR = PROJECT_ROOT / "tests" / "golden" / "structure"
REGEN_HINT = "regenerate with: .venv/bin/python tests/golden/regen_structure.py (review the diff)"

PAYLOADS = sorted(PAYLOADS_DIR.glob("*.json")) if PAYLOADS_DIR.is_dir() else []
# Only the payload-driven tests need /work/shared; the table-driven ones always run.
needs_payloads = pytest.mark.skipif(not PAYLOADS, reason=f"{PAYLOADS_DIR} not found")
each_payload = pytest.mark.parametrize("payload", PAYLOADS, ids=[p.stem for p in PAYLOADS])


def event_of(payload: Path) -> dict[str, Any]:
    """A Hookline event document around a payload file."""
    return {"body": msgspec.json.decode(payload.read_bytes()), "custom_variables": {}}


def render_golden(payload: Path) -> bytes:
    """The golden file content for a payload (used by tests/golden/regen_structure.py)."""
    fields = infer(event_of(payload)).fields
    return msgspec.json.format(msgspec.json.encode(fields), indent=2) + b"\n"


def golden_path(payload: Path) -> Path:
    return GOLDEN_DIR / payload.name


def validator(structure: Structure) -> Draft202012Validator:
    return Draft202012Validator(structure.schema)


def values_at(document: Any, path: str) -> list[Any]:
    """Every value at ``path``, reading each ``[0]`` as "any item of the array"."""
    current = [document]
    for part in parse(path):
        found: list[Any] = []
        for value in current:
            if isinstance(part, int):
                if isinstance(value, list):
                    found.extend(value)
            elif isinstance(value, dict) and part in value:
                found.append(value[part])
        current = found
    return current


def same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (1 != True != 1.0 here)."""
    return type(a) is type(b) and a == b


def is_cut(example: Any) -> bool:
    return (
        isinstance(example, str)
        and len(example) == DEFAULT_LIMITS.max_string_example
        and example.endswith("…")
    )


def matches_example(value: Any, example: Any) -> bool:
    if is_cut(example):
        return (
            isinstance(value, str) and value.startswith(example[:-1]) and len(value) > len(example)
        )
    return same(value, example)


def field_map(structure: Structure) -> dict[str, Field]:
    return {f.path: f for f in structure.fields}


def node_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in parse(path):
        node = node["items"] if isinstance(part, int) else node["properties"][part]
    return node


# --------------------------------------------------------------------- golden payloads


@needs_payloads
@each_payload
def test_fields_match_golden(payload: Path) -> None:
    golden = golden_path(payload)
    if not golden.exists():
        pytest.fail(f"missing golden file {golden}; {REGEN_HINT}")
    actual = render_golden(payload).decode()
    assert actual == golden.read_text(encoding="utf-8"), f"{golden} differs; {REGEN_HINT}"


@needs_payloads
def test_no_stale_golden_files() -> None:
    names = {p.name for p in PAYLOADS}
    stale = sorted(p.name for p in GOLDEN_DIR.glob("*.json") if p.name not in names)
    assert not stale, f"golden files without a payload: {stale}; {REGEN_HINT}"


@needs_payloads
@each_payload
def test_leaf_paths_resolve_to_examples(payload: Path) -> None:
    document = event_of(payload)
    structure = infer(document)
    assert structure.fields, "no fields inferred"
    assert structure.truncated is False
    paths = [f.path for f in structure.fields]
    assert len(paths) == len(set(paths)), "duplicate field paths"
    assert "" not in paths
    checked = 0
    for field in structure.fields:
        assert join(parse(field.path)) == field.path  # canonical libs.domain.paths syntax
        kinds = field.type.split("|")
        if "object" in kinds or "array" in kinds:
            assert field.example is None, field.path
            continue
        values = values_at(document, field.path)
        assert values, f"{field.path} resolves to nothing"
        if not any(isinstance(p, int) for p in parse(field.path)):
            value = resolve(document, field.path)
            assert matches_example(value, field.example) or (
                field.example is None and value is None
            ), f"{field.path}: {value!r} != {field.example!r}"
        elif field.example is None:
            assert all(v is None for v in values), field.path
        else:
            assert any(matches_example(v, field.example) for v in values), field.path
        checked += 1
    assert checked > 0


@needs_payloads
@each_payload
def test_schema_is_2020_12_and_validates_document(payload: Path) -> None:
    document = event_of(payload)
    structure = infer(document)
    assert structure.schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(structure.schema)
    errors = list(validator(structure).iter_errors(document))
    assert not errors, errors[0].message
    assert structure.sample is document


@needs_payloads
@each_payload
def test_merge_with_itself_changes_nothing(payload: Path) -> None:
    document = event_of(payload)
    structure = infer(document)
    merged = merge(structure, document)
    assert merged.schema == structure.schema
    assert merged.fields == structure.fields
    assert fields_of(structure.schema, document) == structure.fields
    assert not drift(structure, document)


# ------------------------------------------------------------------------------ merge

WIDENING = [
    pytest.param({"a": None}, {"a": "x"}, "string|null", ["string", "null"], id="null+string"),
    pytest.param({"a": "x"}, {"a": None}, "string|null", ["string", "null"], id="string+null"),
    pytest.param({"a": 1}, {"a": 1.5}, "number", "number", id="int+float"),
    pytest.param({"a": 2.5}, {"a": 3}, "number", "number", id="float+int"),
    pytest.param({"a": "x"}, {"a": 1}, "string|integer", ["string", "integer"], id="string+int"),
    pytest.param({"a": True}, {"a": 1}, "integer|boolean", ["integer", "boolean"], id="bool+int"),
    pytest.param(
        {"a": {"k": 1}}, {"a": "s"}, "object|string", ["object", "string"], id="object+string"
    ),
    pytest.param({"a": [1]}, {"a": None}, "array|null", ["array", "null"], id="array+null"),
    pytest.param({"a": None}, {"a": {"k": 1}}, "object|null", ["object", "null"], id="null+object"),
]


@pytest.mark.parametrize(("first", "second", "field_type", "schema_type"), WIDENING)
def test_merge_widens_types(
    first: dict[str, Any], second: dict[str, Any], field_type: str, schema_type: Any
) -> None:
    before = infer(first)
    if before.schema["properties"]["a"]["type"] != "number":  # number already admits ints
        assert not validator(before).is_valid(second)  # the widening is needed
    merged = merge(before, second)
    assert field_map(merged)["a"].type == field_type
    assert merged.schema["properties"]["a"]["type"] == schema_type
    assert "anyOf" not in merged.schema["properties"]["a"]
    assert validator(merged).is_valid(first)
    assert validator(merged).is_valid(second)
    assert merged.sample is second
    Draft202012Validator.check_schema(merged.schema)


def test_merge_nullable_object_keeps_its_properties() -> None:
    merged = merge(infer({"u": None}), {"u": {"k": "v"}})
    assert merged.schema["properties"]["u"] == {
        "type": ["object", "null"],
        "properties": {"k": {"type": "string"}},
        "required": ["k"],
    }
    assert [(f.path, f.type, f.example) for f in merged.fields] == [
        ("u", "object|null", None),
        ("u.k", "string", "v"),
    ]
    # and back again: the stored (folded) schema merges like genson's own form
    again = merge(merged, {"u": None})
    assert again.schema == merged.schema


def test_fields_in_one_document_only_become_optional() -> None:
    merged = merge(infer({"a": 1, "b": 2}), {"a": 3, "c": 4})
    assert merged.schema["required"] == ["a"]
    assert [(f.path, f.type, f.example) for f in merged.fields] == [
        ("a", "integer", 3),  # examples come from the latest sample...
        ("b", "integer", 2),  # ...or from the older one when the latest lacks them
        ("c", "integer", 4),
    ]
    assert validator(merged).is_valid({"a": 1})
    assert not validator(merged).is_valid({"b": 1})


def test_keys_added_to_an_empty_object_are_optional() -> None:
    merged = merge(infer({"e": {}}), {"e": {"z": 1}})
    e = merged.schema["properties"]["e"]
    assert e["properties"] == {"z": {"type": "integer"}}
    assert "required" not in e
    assert validator(merged).is_valid({"e": {}})


def test_merge_keeps_old_example_when_new_value_is_null() -> None:
    merged = merge(infer({"a": "x"}), {"a": None})
    assert field_map(merged)["a"] == Field(path="a", type="string|null", example="x")


def test_arrays_of_objects_with_different_keys() -> None:
    first = {"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2, "note": None}]}
    second = {"items": [{"sku": "c", "price": 2.5}]}
    alone = infer(first)
    assert alone.schema["properties"]["items"]["items"]["required"] == ["qty", "sku"]
    merged = merge(alone, second)
    items = merged.schema["properties"]["items"]["items"]
    assert items["required"] == ["sku"]
    assert [(f.path, f.type, f.example) for f in merged.fields] == [
        ("items", "array", None),
        ("items[0].sku", "string", "c"),
        ("items[0].qty", "integer", 1),
        ("items[0].note", "null", None),
        ("items[0].price", "number", 2.5),
    ]
    assert validator(merged).is_valid(first)
    assert validator(merged).is_valid(second)


def test_nested_arrays_and_quoted_keys() -> None:
    document = {"m": [[{"a": 1}], [{"b": "x"}]], "labels": {"org.x.y": "v"}}
    structure = infer(document)
    assert [(f.path, f.type, f.example) for f in structure.fields] == [
        ("m", "array", None),
        ("m[0][0].a", "integer", 1),
        ("m[0][0].b", "string", "x"),
        ("labels", "object", None),
        ('labels["org.x.y"]', "string", "v"),
    ]
    assert resolve(document, 'labels["org.x.y"]') == "v"


def test_merge_keeps_hand_written_annotations() -> None:
    hand = Structure(
        sample={"a": "x"},
        schema={
            "$schema": DRAFT_2020_12,
            "type": "object",
            "properties": {"a": {"type": "string", "description": "Customer name"}},
            "required": ["a"],
        },
        fields=[],
    )
    merged = merge(hand, {"a": None, "b": 1})
    assert merged.schema["properties"]["a"] == {
        "type": ["string", "null"],
        "description": "Customer name",
    }
    assert merged.schema["required"] == ["a"]


def test_merge_refuses_a_schema_nested_too_deep() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(StructureError):
        merge(Structure(sample=None, schema=schema, fields=[]), {"a": 1})


def test_fields_of_hand_written_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "r": {"$ref": "#/$defs/x"},
            "s": {"enum": ["x", "y"]},
        },
    }
    assert fields_of(schema, {"a": "v", "s": "y"}) == [
        Field(path="a", type="string|null", example="v"),
        Field(path="r", type="any", example=None),
        Field(path="s", type="string", example="y"),
    ]


@pytest.mark.parametrize(
    ("document", "schema_type", "paths"),
    [
        pytest.param("x", "string", [], id="string"),
        pytest.param(None, "null", [], id="null"),
        pytest.param(3, "integer", [], id="integer"),
        pytest.param([1, 2], "array", [], id="array-of-scalars"),
        pytest.param([{"a": 1}, {"a": 2}], "array", ["[0].a"], id="array-of-objects"),
        pytest.param({}, "object", [], id="empty-object"),
    ],
)
def test_any_json_value_at_the_top(document: Any, schema_type: str, paths: list[str]) -> None:
    structure = infer(document)
    assert structure.schema["type"] == schema_type
    assert [f.path for f in structure.fields] == paths
    assert validator(structure).is_valid(document)
    for path in paths:
        assert resolve(document, path) == field_map(structure)[path].example


@pytest.mark.parametrize(
    "document", [pytest.param({"a": object()}, id="object"), pytest.param({1: "x"}, id="int-key")]
)
def test_non_json_values_are_refused(document: Any) -> None:
    with pytest.raises(StructureError):
        infer(document)


# ------------------------------------------------------------------------------ drift

DRIFT = [
    pytest.param({"body": {"a": 1}}, {"body": {"a": 2}}, [], [], id="same-shape"),
    pytest.param(
        {"body": {"a": 1}},
        {"body": {"a": 1, "n": {"x": {"y": 1}}}},
        ["body.n"],
        [],
        id="added-top-most-only",
    ),
    pytest.param(
        {"body": {"a": 1, "b": {"c": 1}}}, {"body": {"a": 1}}, [], ["body.b"], id="missing"
    ),
    pytest.param(
        {"body": {"a": 1, "b": {"c": 1}}},
        {"body": {"a": 1, "b": {}}},
        [],
        ["body.b.c"],
        id="missing-nested",
    ),
    pytest.param(
        {"items": [{"sku": "a"}]},
        {"items": [{"sku": "b"}, {"sku": "c", "extra": 1}, {"qty": 1}, {"qty": 2}]},
        ["items[0].extra", "items[0].qty"],
        ["items[0].sku"],
        id="in-arrays",
    ),
    pytest.param({"a": 1}, {"a": 1, "x.y": 2}, ['["x.y"]'], [], id="quoted-key"),
    pytest.param({"a": []}, {"a": [{"k": 1}]}, ["a[0].k"], [], id="empty-array-got-objects"),
    pytest.param({"a": 1, "b": 2}, {"b": 2, "c": 3}, ["c"], ["a"], id="both"),
    pytest.param(
        {"p": {"a": 1}, "q": {"a": 1}},
        {"p": {"a": 1, "n1": 1}, "q": {"a": 1, "n2": 1}},
        ["p.n1", "q.n2"],
        [],
        id="document-order",
    ),
]


DRIFT_CASES = [case.values for case in DRIFT]


@pytest.mark.parametrize(("first", "later", "added", "missing"), DRIFT)
def test_drift(first: Any, later: Any, added: list[str], missing: list[str]) -> None:
    result = drift(infer(first), later)
    assert result == Drift(added=added, missing=missing)
    assert bool(result) is bool(added or missing)


TYPE_DRIFT = [
    pytest.param({"a": "s"}, {"a": 5}, [("a", "string", "integer")], id="string-became-integer"),
    pytest.param({"a": "s"}, {"a": {"k": 1}}, [("a", "string", "object")], id="became-object"),
    pytest.param({"a": {"k": 1}}, {"a": [1]}, [("a", "object", "array")], id="object-became-array"),
    pytest.param({"a": "s"}, {"a": None}, [("a", "string", "null")], id="became-null"),
    pytest.param({"a": 1}, {"a": 1.5}, [("a", "integer", "number")], id="integer-got-fraction"),
    pytest.param({"a": 1}, {"a": 2.0}, [], id="integer-as-whole-float"),
    pytest.param({"a": 1.5}, {"a": 2}, [], id="number-got-integer"),
    pytest.param({"a": True}, {"a": 1}, [("a", "boolean", "integer")], id="boolean-became-integer"),
    pytest.param(
        {"o": {"n": 1, "t": "x"}},
        {"o": {"n": "1", "t": "x"}},
        [("o.n", "integer", "string")],
        id="nested",
    ),
    pytest.param(
        {"items": [{"q": 1}, {"q": 2}]},
        {"items": [{"q": 1}, {"q": "two"}, {"q": "three"}]},
        [("items[0].q", "integer", "string")],
        id="in-array-items-once",
    ),
    pytest.param(
        {"tags": ["a"]}, {"tags": ["a", 3]}, [("tags[0]", "string", "integer")], id="item"
    ),
    pytest.param([1, 2], {"a": 1}, [("", "array", "object")], id="root"),
]


@pytest.mark.parametrize(("first", "later", "changed"), TYPE_DRIFT)
def test_type_drift(first: Any, later: Any, changed: list[tuple[str, str, str]]) -> None:
    result = drift(infer(first), later)
    assert [(c.path, c.expected, c.actual) for c in result.changed] == changed
    assert (result.added, result.missing) == ([], [])  # nothing below a change is compared
    assert bool(result) is bool(changed)


def test_type_drift_respects_widened_structures() -> None:
    """After a merge admitted null and a number, neither is drift; a string still is."""
    structure = merge(infer({"a": 1, "b": "x"}), {"a": 2.5, "b": None})
    assert not drift(structure, {"a": 3, "b": None})
    assert not drift(structure, {"a": 0.5, "b": "y"})
    changes = drift(structure, {"a": "3", "b": 4}).changed
    assert [(c.path, c.expected, c.actual) for c in changes] == [
        ("a", "number", "string"),
        ("b", "string|null", "integer"),
    ]


def test_one_drift_checker_serves_many_documents() -> None:
    """The checker keeps what it learned about schema nodes, never about documents: the
    table's cases run through one checker per structure, in both orders, agree with a
    fresh check each time."""
    cases = [(first, later, Drift(added, missing)) for first, later, added, missing in DRIFT_CASES]
    cases += [
        (first, later, Drift([], [], [TypeChange(*c) for c in changed]))
        for first, later, changed in (case.values for case in TYPE_DRIFT)
    ]
    for first, later, expected_later in cases:
        check = DriftChecker(infer(first))
        for document in (later, first, later, {"unrelated": [1, {"x": 2}]}, later):
            expected = expected_later if document is later else None
            result = check(document)
            assert result == drift(infer(first), document)
            if expected is not None:
                assert result == expected


@needs_payloads
def test_drift_checker_across_real_payloads() -> None:
    """Each GitHub payload's structure checked against every other payload, reusing one
    checker per structure: no drift against itself, and the same answer as a fresh one."""
    documents = [msgspec.json.decode(p.read_bytes()) for p in PAYLOADS]
    structures = [infer(d) for d in documents[:12]]
    for struct, own in zip(structures, documents, strict=False):
        check = DriftChecker(struct)
        assert not check(own)
        for other in documents:
            assert check(other) == drift(struct, other)
        assert not check(own)


def test_drift_ignores_optional_fields_and_nulls() -> None:
    structure = merge(infer({"a": 1, "b": 2, "u": {"k": 1}}), {"a": 1, "u": None})
    assert not drift(structure, {"a": 5, "u": None})
    assert drift(structure, {"a": 5, "u": {}}) == Drift(added=[], missing=["u.k"])


def test_drift_does_not_report_below_truncated_nodes() -> None:
    limits = Limits(max_depth=2)
    deep = infer({"a": {"b": {"c": 1}}}, limits=limits)
    assert not drift(deep, {"a": {"b": {"c": 2, "d": 3}}}, limits=limits)
    wide = infer({f"k{i}": i for i in range(10)}, limits=Limits(max_fields=5))
    assert not drift(wide, {f"k{i}": i for i in range(10)})
    assert drift(wide, {"k0": 1}).missing == ["k1", "k2", "k3", "k4"]


# ----------------------------------------------------------------------------- bounds


def nested_dicts(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth):
        document = {"a": document}
    return document


def test_very_deep_document_is_cut_at_max_depth() -> None:
    document = {"body": nested_dicts(10_000), "custom_variables": {}}
    structure = infer(document)
    assert structure.truncated is True
    depths = [len(parse(f.path)) for f in structure.fields]
    assert max(depths) == DEFAULT_LIMITS.max_depth
    deepest = structure.fields[depths.index(max(depths))]
    assert deepest.type == "object"
    node = node_at(structure.schema, deepest.path)
    assert node == {"type": "object", TRUNCATED_KEYWORD: True}
    assert validator(structure).is_valid(document)
    assert not drift(structure, document)
    assert merge(structure, document).schema == structure.schema


def test_very_deep_list_is_cut_at_max_depth() -> None:
    document: list[Any] = []
    for _ in range(10_000):
        document = [document]
    structure = infer(document)
    assert structure.truncated is True
    assert structure.fields == []  # array items are not fields of their own
    node = structure.schema
    for _ in range(DEFAULT_LIMITS.max_depth):
        node = node["items"]
    assert node == {"type": "array", TRUNCATED_KEYWORD: True}
    assert validator(structure).is_valid(document)


def test_custom_max_depth() -> None:
    document = {"a": {"b": {"c": 1}, "x": 1}, "s": 1}
    structure = infer(document, limits=Limits(max_depth=2))
    assert [(f.path, f.type) for f in structure.fields] == [
        ("a", "object"),
        ("a.b", "object"),
        ("a.x", "integer"),
        ("s", "integer"),
    ]
    assert structure.schema["properties"]["a"]["properties"]["b"] == {
        "type": "object",
        TRUNCATED_KEYWORD: True,
    }
    assert structure.truncated is True
    assert infer({"a": {"b": {}}}, limits=Limits(max_depth=2)).truncated is False


def test_wide_document_is_cut_to_max_fields() -> None:
    document = {"body": {f"k{i}": i for i in range(100_000)}}
    structure = infer(document)
    assert len(structure.fields) == DEFAULT_LIMITS.max_fields
    assert structure.truncated is True
    assert structure.fields[0] == Field(path="body", type="object", example=None)
    assert structure.fields[1] == Field(path="body.k0", type="integer", example=0)
    body = structure.schema["properties"]["body"]
    assert len(body["properties"]) == DEFAULT_LIMITS.max_fields - 1
    assert body[TRUNCATED_KEYWORD] is True
    assert validator(structure).is_valid(document)


def test_max_fields_counts_distinct_paths_breadth_first() -> None:
    document = {"deep": {"x": {"y": {"z": 1}}}, "a": 1, "b": [{"c": 1}, {"c": 2}, {"d": 3}]}
    limits = Limits(max_fields=7)
    structure = infer(document, limits=limits)
    # breadth first: deep, a, b; deep.x; deep.x.y, b[0].c, b[0].d (the second "c" counts
    # once, else b[0].d would not fit) and deep.x.y.z is the one left out
    assert [f.path for f in structure.fields] == [
        "deep",
        "deep.x",
        "deep.x.y",
        "a",
        "b",
        "b[0].c",
        "b[0].d",
    ]
    assert structure.truncated is True
    assert node_at(structure.schema, "deep.x.y")[TRUNCATED_KEYWORD] is True
    assert merge(structure, document, limits=limits).fields == structure.fields


def test_long_array_is_inferred_from_its_first_items() -> None:
    limit = DEFAULT_LIMITS.max_array_items
    items: list[dict[str, Any]] = [{"sku": f"s{i}", "n": i} for i in range(limit)]
    # items past the limit differ: if they were looked at, the schema would show it
    items += [{"sku": f"s{i}", "n": str(i), "late": True} for i in range(limit, 100_000)]
    document = {"body": {"items": items}}
    structure = infer(document)
    assert [(f.path, f.type) for f in structure.fields] == [
        ("body", "object"),
        ("body.items", "array"),
        ("body.items[0].sku", "string"),
        ("body.items[0].n", "integer"),
    ]
    assert structure.truncated is True
    assert infer({"items": items[:limit]}).truncated is False


def test_custom_max_array_items() -> None:
    structure = infer([{"a": 1}, {"b": 1}, {"c": 1}], limits=Limits(max_array_items=2))
    assert [f.path for f in structure.fields] == ["[0].a", "[0].b"]
    assert structure.truncated is True


@pytest.mark.parametrize(
    ("length", "cut"), [(DEFAULT_LIMITS.max_string_example, False), (1000, True)]
)
def test_long_string_examples_are_cut(length: int, cut: bool) -> None:
    value = "é" * length
    (field,) = infer({"s": value}).fields
    assert len(field.example) == DEFAULT_LIMITS.max_string_example
    if cut:
        assert field.example == value[: DEFAULT_LIMITS.max_string_example - 1] + "…"
    else:
        assert field.example == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_depth": 0},
        {"max_depth": 10_000},
        {"max_fields": -1},
        {"max_array_items": 0},
        {"max_string_example": 1},
    ],
)
def test_invalid_limits(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Limits(**kwargs)

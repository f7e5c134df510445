"""JSON structure of a connector's events (F4): schema, design view and drift.

Pure functions, no I/O.  ``infer`` learns a JSON Schema (draft 2020-12) from one event
document, ``merge`` widens it with another, ``fields_of`` gives the *design* view (the
tree of fields as :mod:`libs.domain.paths` paths with types and example values) and ``drift``
tells which paths a later event adds or lacks.

How it is built: `genson` does the type inference and the widening (``SchemaBuilder``
given the old schema then the new object: null+string -> ``["null", "string"]``,
int+float -> ``number``, ``required`` = keys present every time).  genson recurses once
per nesting level and looks at every array item and every key, so it cannot be bounded
by itself: a 10,000-deep document raises RecursionError, a 100k-element array is walked
whole.  So the document is first copied *iteratively* into a bounded copy (depth cut,
first ``max_array_items`` items of each array, at most ``max_fields`` distinct fields,
breadth first so shallow fields win) and only that copy is given to genson, whose
recursion is then at most ``max_depth`` levels deep.  genson's output is then
post-processed to the 2020-12 shape we promise: ``$schema`` set, ``anyOf`` of disjoint
types folded into one nullable union (``{"type": ["object", "null"], "properties": ...}``)
and union members in a stable order (``string|null``).  Before a stored schema is merged
it is unfolded back into the per-type ``anyOf`` form genson understands.

Where a bound cut something the schema node is marked ``"x-hookline-truncated": true``
(an annotation keyword; validators ignore it): a container at ``max_depth`` is typed
(``{"type": "object"}``, which admits any content, i.e. its children are ``{}``) but not
descended, and an object that lost keys to ``max_fields`` keeps the keys it had.
``drift`` does not report new keys under such nodes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
from genson import SchemaBuilder
from genson.schema.node import SchemaGenerationError

from libs.domain import jsonvalue
from libs.domain.paths import join

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
TRUNCATED_KEYWORD = "x-hookline-truncated"

# genson's own recursion is per nesting level (about three frames a level); keep well
# under Python's default limit of 1000 frames.
MAX_DEPTH_LIMIT = 100

_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")
_OBJECT_KEYWORDS = frozenset(
    {
        "properties",
        "required",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
    }
)
_ARRAY_KEYWORDS = frozenset(
    {
        "items",
        "prefixItems",
        "contains",
        "minContains",
        "maxContains",
        "minItems",
        "maxItems",
        "uniqueItems",
        "unevaluatedItems",
    }
)
_STRING_KEYWORDS = frozenset(
    {"minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"}
)
_NUMBER_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_KEYWORDS_BY_TYPE: dict[str, frozenset[str]] = {
    "object": _OBJECT_KEYWORDS | {TRUNCATED_KEYWORD},
    "array": _ARRAY_KEYWORDS | {TRUNCATED_KEYWORD},
    "string": _STRING_KEYWORDS,
    "integer": _NUMBER_KEYWORDS,
    "number": _NUMBER_KEYWORDS,
}
_TYPED_KEYWORDS = frozenset().union(*_KEYWORDS_BY_TYPE.values())

Part = str | int
Parts = tuple[Part, ...]


class StructureError(ValueError):
    """A document or schema the structure functions cannot work with."""


class Limits(msgspec.Struct, frozen=True):
    """Bounds on the work done for one document (see the module docstring)."""

    max_depth: int = 32  # nesting levels walked; deeper containers are typed, not descended
    max_fields: int = 2000  # distinct field paths kept (breadth first)
    max_array_items: int = 50  # items per array used to infer its item schema
    max_string_example: int = 200  # longer string examples are cut, ending with "…"

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH_LIMIT:
            raise ValueError(f"max_depth must be between 1 and {MAX_DEPTH_LIMIT}")
        if self.max_fields < 0:
            raise ValueError("max_fields must be >= 0")
        if self.max_array_items < 1:
            raise ValueError("max_array_items must be >= 1")
        if self.max_string_example < 2:
            raise ValueError("max_string_example must be >= 2")


DEFAULT_LIMITS = Limits()


class Field(msgspec.Struct, frozen=True):
    """One field of the design view."""

    path: str  # libs.domain.paths syntax; array items as [0]: "body.commits[0].author.name"
    type: str  # JSON Schema type or a union such as "string|null"; "any" if unconstrained
    example: Any  # first non-null scalar seen at the path, else None (always None for
    # objects and arrays); strings longer than Limits.max_string_example are cut with "…"


class Structure(msgspec.Struct):
    sample: Any  # the (latest) document the structure was inferred from
    schema: dict[str, Any]  # JSON Schema draft 2020-12
    fields: list[Field]
    truncated: bool = False  # a bound cut something (see Limits)


class TypeChange(msgspec.Struct, frozen=True):
    """A field whose value is of a JSON type its schema does not admit."""

    path: str
    expected: str  # the admitted types, as in Field.type: "number", "string|null"
    actual: str  # the JSON type of the event's value


class Drift(msgspec.Struct, frozen=True):
    added: list[str]  # paths in the document the structure lacks (top-most only)
    missing: list[str]  # required paths of the structure the document lacks (top-most only)
    changed: list[TypeChange] = msgspec.field(default_factory=list)  # not descended into

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.changed)


# --------------------------------------------------------------------------- public API


def infer(document: Any, *, limits: Limits = DEFAULT_LIMITS) -> Structure:
    """The structure of one document."""
    return _build(None, document, limits)


def merge(structure: Structure, document: Any, *, limits: Limits = DEFAULT_LIMITS) -> Structure:
    """``structure`` widened to accept ``document`` too (which becomes the sample).

    Types widen to unions (``string|null``; integer and number give ``number``), fields
    present in only one of them become optional, and examples the new document lacks
    are kept from the old structure.
    """
    return _build(structure, document, limits)


def fields_of(
    schema: dict[str, Any], sample: Any, *, limits: Limits = DEFAULT_LIMITS
) -> list[Field]:
    """The design view of ``schema``: every field except the root, depth first in
    schema order, with example values taken from ``sample``."""
    return [field for field, _ in _fields(schema, sample, limits)]


def drift(structure: Structure, document: Any, *, limits: Limits = DEFAULT_LIMITS) -> Drift:
    """New, missing and retyped fields of ``document`` compared with ``structure``.

    A value of a type its schema does not admit is a type change (an integer where a
    number is expected is not; nor is a whole float where an integer is, as JSON
    writers differ on ``1`` and ``1.0``), and what is below it is not compared.  New
    keys are not reported in objects whose keys a bound cut (marked truncated), nor
    anything below ``limits.max_depth`` or past the first ``limits.max_array_items``
    items of an array.  To check many documents against one structure, build a
    :class:`DriftChecker` once.
    """
    return DriftChecker(structure, limits=limits)(document)


class DriftChecker:
    """:func:`drift` against one structure, for many documents (the mapper's hot path).

    What a schema node admits (types, and for objects and arrays their keys and items,
    across ``anyOf`` branches) is worked out the first time a document reaches that
    node, then kept: a later event costs one walk over its own values, not a schema
    analysis per value.
    """

    __slots__ = ("_limits", "_nodes", "_schema")

    def __init__(self, structure: Structure, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._schema = structure.schema  # held, so the ids keyed below stay unique
        self._limits = limits
        self._nodes: dict[int, _Node] = {}  # id(schema node) -> what it admits

    def _node(self, schema: dict[str, Any]) -> _Node:
        node = self._nodes.get(id(schema))
        if node is None:
            node = self._nodes[id(schema)] = _Node(schema)
        return node

    def __call__(self, document: Any) -> Drift:
        added: dict[str, None] = {}
        missing: dict[str, None] = {}
        changed: list[TypeChange] = []
        max_depth, max_items = self._limits.max_depth, self._limits.max_array_items

        def admitted(value: Any, node: _Node, parts: Parts) -> bool:
            actual = _json_type(value)
            if node.admits(actual, value):
                return True
            changed.append(TypeChange(join(list(parts)), node.expected, actual))
            return False

        # Containers go on the stack; scalars are checked where they are met.
        stack: list[tuple[Any, _Node | None, Parts]] = []
        root = self._node(self._schema)
        if admitted(document, root, ()) and isinstance(document, dict | list):
            stack.append((document, root, ()))
        while stack:
            value, node, parts = stack.pop()
            if len(parts) >= max_depth or (node is not None and node.shape is None):
                continue
            shape = _EMPTY_SHAPE if node is None or node.shape is None else node.shape
            if isinstance(value, dict):
                children: list[tuple[Any, _Node | None, Parts]] = []
                for key, sub in value.items():
                    sub_schema = shape.properties.get(key)
                    if sub_schema is None:
                        if not (shape.open or shape.truncated):
                            added[join([*parts, _key(key)])] = None
                        continue
                    path = (*parts, _key(key))
                    sub_node = self._node(sub_schema)
                    if admitted(sub, sub_node, path) and isinstance(sub, dict | list):
                        children.append((sub, sub_node, path))
                stack.extend(reversed(children))  # report in document order
                for key in shape.required:
                    if key not in value:
                        missing[join([*parts, key])] = None
            elif not shape.truncated:
                item_node = self._node(shape.items) if shape.items is not None else None
                items: list[tuple[Any, _Node | None, Parts]] = []
                for item in value[:max_items]:
                    path = (*parts, 0)
                    if item_node is not None and not admitted(item, item_node, path):
                        continue
                    if isinstance(item, dict | list):
                        items.append((item, item_node, path))
                stack.extend(reversed(items))
        return Drift(added=list(added), missing=list(missing), changed=_first_per_path(changed))


class _Node:
    """What one schema node admits: JSON types (empty: anything) and its shape (None
    when unconstrained: nothing below it is compared)."""

    __slots__ = ("expected", "shape", "types")

    def __init__(self, schema: dict[str, Any]) -> None:
        types = _types_of(schema)
        self.types = frozenset(types)
        self.expected = "|".join(types)
        self.shape = None if not types else _Shape.of(schema)

    def admits(self, actual: str, value: Any) -> bool:
        if not self.types or actual in self.types:
            return True
        if actual == "integer":
            return "number" in self.types
        return actual == "number" and "integer" in self.types and float(value).is_integer()


def _first_per_path(changes: list[TypeChange]) -> list[TypeChange]:
    """One change per path (array items all report ``[0]``): the first one met."""
    seen: dict[str, TypeChange] = {}
    for change in changes:
        seen.setdefault(change.path, change)
    return list(seen.values())


# --------------------------------------------------------------------------- inference


def _build(base: Structure | None, document: Any, limits: Limits) -> Structure:
    builder = SchemaBuilder(schema_uri=None)
    seen: set[Parts] = set()
    old_examples: dict[str, Any] = {}
    if base is not None:
        _check_schema_depth(base.schema, limits)
        seen.update(parts for _, parts in _walk_fields(base.schema, limits))
        old_examples = {f.path: f.example for f in base.fields if f.example is not None}
    bounded, marks, truncated = _bounded_copy(document, limits, seen)
    try:
        if base is not None:
            builder.add_schema(_unfold(base.schema))
        builder.add_object(bounded)
    except (SchemaGenerationError, TypeError, AttributeError) as exc:
        raise StructureError(f"cannot merge the document into the schema: {exc}") from exc
    schema = _fold(builder.to_schema(), (), marks)
    schema = {"$schema": DRAFT_2020_12, **schema}
    fields: list[Field] = []
    for field, found in _fields(schema, document, limits):
        if not found and field.path in old_examples:
            field = Field(path=field.path, type=field.type, example=old_examples[field.path])
        fields.append(field)
    return Structure(
        sample=document,
        schema=schema,
        fields=fields,
        truncated=truncated or (base is not None and base.truncated),
    )


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise StructureError(f"object keys must be strings, got {key!r}")
    return key


_Marks = dict[Parts, set[str]]  # path -> container types ("object"/"array") cut there


def _bounded_copy(document: Any, limits: Limits, seen: set[Parts]) -> tuple[Any, _Marks, bool]:
    """A copy of ``document`` within ``limits``, made without recursion.

    ``seen`` holds the field paths (array items as index 0) already counted towards
    ``max_fields``; it is updated.  Returns the copy, where a bound cut something, and
    whether anything was cut.
    """
    marks: _Marks = {}
    truncated = False
    root: list[Any] = [None]
    # (source value, destination container, key in it, depth, normalised path)
    queue: deque[tuple[Any, Any, Any, int, Parts]] = deque([(document, root, 0, 0, ())])
    while queue:
        value, dest, slot, depth, parts = queue.popleft()
        if isinstance(value, dict):
            copy: dict[str, Any] = {}
            dest[slot] = copy
            if not value:
                continue
            if depth >= limits.max_depth:
                marks.setdefault(parts, set()).add("object")
                truncated = True
                continue
            for key, sub in value.items():
                path = (*parts, _key(key))
                if path not in seen:
                    if len(seen) >= limits.max_fields:
                        marks.setdefault(parts, set()).add("object")
                        truncated = True
                        continue
                    seen.add(path)
                copy[key] = None
                queue.append((sub, copy, key, depth + 1, path))
        elif isinstance(value, list):
            if value and depth >= limits.max_depth:
                dest[slot] = []
                marks.setdefault(parts, set()).add("array")
                truncated = True
                continue
            head = value[: limits.max_array_items]
            if len(value) > len(head):
                truncated = True
            items: list[Any] = [None] * len(head)
            dest[slot] = items
            for index, sub in enumerate(head):
                queue.append((sub, items, index, depth + 1, (*parts, 0)))
        elif value is None or isinstance(value, str | bool | int | float):
            dest[slot] = value
        else:
            raise StructureError(f"not a JSON value: {type(value).__name__}")
    return root[0], marks, truncated


# ------------------------------------------------------------- genson <-> 2020-12 shape


def _type_key(name: str) -> tuple[int, str]:
    return (_TYPE_ORDER.index(name) if name in _TYPE_ORDER else len(_TYPE_ORDER), name)


def _ordered_types(types: list[str]) -> str | list[str]:
    unique = sorted(set(types), key=_type_key)
    return unique[0] if len(unique) == 1 else unique


def _fold(schema: dict[str, Any], parts: Parts, marks: _Marks) -> dict[str, Any]:
    """genson output -> our 2020-12 shape (nullable unions, ordered types, marks)."""
    if "anyOf" in schema:
        branches = [_fold(branch, parts, marks) for branch in schema["anyOf"]]
        folded = _fold_branches(branches)
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if folded is None:
            return {**rest, "anyOf": branches}
        return {**rest, **folded}
    out = dict(schema)
    if isinstance(out.get("type"), list):
        out["type"] = _ordered_types(out["type"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {
            key: _fold(sub, (*parts, key), marks) for key, sub in out["properties"].items()
        }
    if isinstance(out.get("items"), dict):
        out["items"] = _fold(out["items"], (*parts, 0), marks)
    if out.get("required") == []:
        del out["required"]  # genson keeps an empty list once it saw one (see _unfold)
    cut = marks.get(parts)
    if cut and any(t in cut for t in _types_of(out)):
        out[TRUNCATED_KEYWORD] = True
    return out


def _fold_branches(branches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One schema equivalent to ``anyOf`` of ``branches``, or None if they overlap.

    Branches of distinct types can share one schema because every keyword except
    ``type`` only applies to instances of one type (``required`` to objects, ...).
    """
    types: list[str] = []
    merged: dict[str, Any] = {}
    for branch in branches:
        branch_types = branch.get("type")
        if isinstance(branch_types, str):
            branch_types = [branch_types]
        if not isinstance(branch_types, list) or "anyOf" in branch:
            return None
        if set(branch_types) & set(types):
            return None
        types.extend(branch_types)
        for keyword, value in branch.items():
            if keyword == "type":
                continue
            if keyword in merged and merged[keyword] != value:
                return None
            merged[keyword] = value
    return {"type": _ordered_types(types), **merged}


def _unfold(schema: Any) -> dict[str, Any]:
    """Our 2020-12 shape -> the per-type ``anyOf`` form genson merges correctly.

    genson splits ``{"type": [...], ...}`` into one schema per type *with all the other
    keywords*, which would hang ``properties`` on the ``null`` branch; so each type gets
    only its own keywords here.  Keywords of no particular type go to the first branch.
    """
    if not isinstance(schema, dict):
        return {}  # boolean schemas: genson has no notion of them
    schema = {k: v for k, v in schema.items() if k != "$schema"}
    if "anyOf" in schema and isinstance(schema["anyOf"], list):
        return {"anyOf": [_unfold(branch) for branch in schema["anyOf"]]}
    types = schema.get("type")
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list) or not types:
        return _unfold_children(schema)
    branches: list[dict[str, Any]] = []
    for index, name in enumerate(sorted(set(types), key=_type_key)):
        own = _KEYWORDS_BY_TYPE.get(name, frozenset())
        branch: dict[str, Any] = {"type": name}
        for keyword, value in schema.items():
            if keyword == "type":
                continue
            if keyword in own or (index == 0 and keyword not in _TYPED_KEYWORDS):
                branch[keyword] = value
        if name == "object" and "required" not in branch:
            # no "required" means none is; genson would otherwise make the next
            # object's keys required
            branch["required"] = []
        branches.append(_unfold_children(branch))
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _unfold_children(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    for keyword in ("properties", "patternProperties"):
        if isinstance(out.get(keyword), dict):
            out[keyword] = {k: _unfold(v) for k, v in out[keyword].items()}
    if "items" in out:
        out["items"] = _unfold(out["items"])
    return out


def _check_schema_depth(schema: Any, limits: Limits) -> None:
    """Refuse (hand-edited) schemas nested deeper than genson can recurse safely."""
    allowed = 2 * limits.max_depth + 8
    stack: list[tuple[Any, int]] = [(schema, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        if depth > allowed:
            raise StructureError(f"schema nested deeper than {allowed} levels")
        for keyword in ("properties", "patternProperties"):
            if isinstance(node.get(keyword), dict):
                stack.extend((sub, depth + 1) for sub in node[keyword].values())
        if "items" in node:
            stack.append((node["items"], depth + 1))
        if isinstance(node.get("anyOf"), list):
            stack.extend((sub, depth + 1) for sub in node["anyOf"])


# ------------------------------------------------------------------------ schema walks


def _types_of(schema: Any) -> list[str]:
    """The JSON types ``schema`` admits, in canonical order; [] when unconstrained."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if isinstance(kind, str):
            found.append(kind)
        elif isinstance(kind, list):
            found.extend(t for t in kind if isinstance(t, str))
        elif "const" in node or isinstance(node.get("enum"), list):
            values = [node["const"]] if "const" in node else node["enum"]
            found.extend(_json_type(v) for v in values)
        elif "properties" in node:
            found.append("object")
        elif "items" in node:
            found.append("array")
        for keyword in ("anyOf", "oneOf"):
            if isinstance(node.get(keyword), list):
                stack.extend(node[keyword])
    return sorted(set(found), key=_type_key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _is_unconstrained(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not _types_of(schema))


class _Shape:
    """What a schema node says about objects and arrays, across its union branches."""

    __slots__ = ("items", "open", "properties", "required", "truncated")

    def __init__(self) -> None:
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.open = False  # unknown keys are expected (patternProperties etc.)
        self.items: dict[str, Any] | None = None
        self.truncated = False

    @classmethod
    def of(cls, schema: Any) -> _Shape:
        shape = cls()
        stack = [schema]
        while stack:
            node = stack.pop()
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("properties"), dict):
                for key, sub in node["properties"].items():
                    shape.properties.setdefault(key, sub)
            if isinstance(node.get("required"), list):
                shape.required.extend(
                    r for r in node["required"] if isinstance(r, str) and r not in shape.required
                )
            if node.get("patternProperties") or node.get("additionalProperties") not in (
                None,
                False,
            ):
                shape.open = True
            if isinstance(node.get("items"), dict) and shape.items is None:
                shape.items = node["items"]
            elif node.get("items") is True:
                shape.items = {}
            if node.get(TRUNCATED_KEYWORD):
                shape.truncated = True
            for keyword in ("anyOf", "oneOf"):
                if isinstance(node.get(keyword), list):
                    stack.extend(reversed(node[keyword]))
        return shape


_EMPTY_SHAPE = _Shape()  # no schema here: every key is new (read only)


def _walk_fields(schema: dict[str, Any], limits: Limits) -> list[tuple[Field, Parts]]:
    return [(field, parts) for field, parts, _ in _walk(schema, None, limits)]


def _fields(schema: dict[str, Any], sample: Any, limits: Limits) -> list[tuple[Field, bool]]:
    return [(field, found) for field, _, found in _walk(schema, sample, limits)]


def _walk(schema: dict[str, Any], sample: Any, limits: Limits) -> list[tuple[Field, Parts, bool]]:
    """Depth-first, without recursion: (field, path parts, example found) per field.

    Array items are not fields themselves; their fields get ``[0]`` in the path.  The
    sample values at a path are the *candidates* the example is picked from: one per
    array item, at most ``max_array_items`` of them.
    """
    out: list[tuple[Field, Parts, bool]] = []
    # (schema node, path parts, candidate sample values, is an array-items node)
    stack: list[tuple[Any, Parts, list[Any], bool]] = [(schema, (), [sample], True)]
    while stack and len(out) < limits.max_fields:
        node, parts, candidates, is_items = stack.pop()
        types = _types_of(node)
        if not is_items:
            example, found = _example(candidates, limits)
            field = Field(path=join(list(parts)), type="|".join(types) or "any", example=example)
            out.append((field, parts, found))
        if len(parts) >= limits.max_depth:
            continue
        shape = _Shape.of(node)
        children: list[tuple[Any, Parts, list[Any], bool]] = []
        for key, sub in shape.properties.items():
            values = [c[key] for c in candidates if isinstance(c, dict) and key in c]
            children.append((sub, (*parts, key), values, False))
        if shape.items is not None and ("array" in types or not types):
            values = []
            for c in candidates:
                if isinstance(c, list):
                    values.extend(c[: limits.max_array_items - len(values)])
            children.append((shape.items, (*parts, 0), values, True))
        stack.extend(reversed(children))
    return out


def _example(candidates: list[Any], limits: Limits) -> tuple[Any, bool]:
    """The first non-null scalar among ``candidates`` (cut if a long string)."""
    for value in candidates:
        if value is None or isinstance(value, dict | list):
            continue
        if isinstance(value, str) and len(value) > limits.max_string_example:
            value = value[: limits.max_string_example - 1] + "…"
        return value, True
    return None, False


# ------------------------------------------------------------------ storage form


def to_document(structure: Structure, *, from_event: str | None) -> dict[str, Any]:
    """The structure as a MongoDB document. ``sample`` and ``schema`` are kept as JSON
    text: schemas have ``$``-prefixed and dotted keys and samples may nest deeper than
    BSON's limit, neither of which a document database stores as fields."""
    return {
        "sample_json": msgspec.json.encode(structure.sample).decode(),
        "schema_json": msgspec.json.encode(structure.schema).decode(),
        "fields": msgspec.to_builtins(structure.fields),
        "truncated": structure.truncated,
        "from_event": from_event,
    }


def from_document(doc: dict[str, Any]) -> Structure:
    return Structure(
        sample=jsonvalue.decode(doc["sample_json"]),
        schema=jsonvalue.decode(doc["schema_json"]),
        fields=msgspec.convert(doc.get("fields") or [], list[Field]),
        truncated=bool(doc.get("truncated", False)),
    )

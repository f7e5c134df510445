"""Decoding a request's JSON into the API's models, or the API's 4xx naming every problem
(with its JSON path and, where a field says so in ``Meta(extra=...)``, its own error
code). Server side: the models themselves (``services.config.models``) stay plain
msgspec structs that the CLI shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args, get_origin

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import FieldInfo

from libs.infra.http import ApiError

T = TypeVar("T")


def problem_of(exc: msgspec.ValidationError, prefix: str = "$") -> tuple[str, str]:
    """msgspec says "Expected `int`, got `str` - at `$.port`": (path, what)."""
    text = str(exc)
    what, sep, where = text.rpartition(" - at `")
    if sep and where.endswith("`"):
        return prefix + where[1:-1], what
    return prefix, text


def _extras(kind: Any) -> dict[str, str]:
    """The ``Meta(extra=...)`` of a field's type, outermost first, through unions."""
    out: dict[str, str] = {}
    if get_origin(kind) is Annotated:
        inner, *metadata = get_args(kind)
        for meta in metadata:
            if isinstance(meta, Meta) and meta.extra:
                out = {**meta.extra, **out}
        return {**_extras(inner), **out}
    for arg in get_args(kind):
        out = {**_extras(arg), **out}
    return out


def _field_problems(
    model: type[Struct], raw: Mapping[str, Any], strict: bool
) -> list[tuple[str, str, FieldInfo | None]]:
    """Every problem of ``raw`` as ``model``, field by field: (path, message, field)."""
    fields = msgspec.structs.fields(model)
    config = model.__struct_config__
    known = {f.encode_name for f in fields} | {config.tag_field}
    found: list[tuple[str, str, FieldInfo | None]] = []
    if config.forbid_unknown_fields:
        found += [(f"$.{k}", "unknown field", None) for k in sorted(set(raw) - known)]
    for f in fields:
        extra = _extras(f.type)
        path = f"$.{f.encode_name}"
        if f.encode_name not in raw:
            if f.required:
                found.append((path, extra.get("invalid", "required"), f))
            continue
        try:
            msgspec.convert(raw[f.encode_name], f.type, strict=strict)
        except msgspec.ValidationError as exc:
            where, what = problem_of(exc, path)
            found.append((where, extra.get("invalid", what), f))
    return found


def decode(
    model: type[T], raw: Mapping[str, Any], code: str, *, status: int = 422, strict: bool = True
) -> T:
    """``raw`` (a JSON object) as ``model``, or the API's 4xx naming every problem.

    A field whose ``Meta.extra`` has a ``code`` answers with that code (the first such
    field in declaration order wins); otherwise ``code``, with every problem listed."""
    members = _tagged(model)
    if members is not None:
        tag_field, by_tag = members
        tag = raw.get(tag_field)
        if not isinstance(tag, str) or tag not in by_tag:
            path, what = f"$.{tag_field}", f"must be one of {', '.join(by_tag)}"
            raise ApiError(status, code, f"{path}: {what}", problems=[_problem(path, what)])
        model = by_tag[tag]
    try:
        return msgspec.convert(raw, model, strict=strict)
    except msgspec.ValidationError as exc:
        if not isinstance(model, type) or not issubclass(model, Struct):
            path, what = problem_of(exc)
            raise ApiError(
                status, code, f"{path}: {what}", problems=[_problem(path, what)]
            ) from None
        found = _field_problems(model, raw, strict) or [(*problem_of(exc), None)]
    for path, message, f in found:
        extra = _extras(f.type) if f is not None else {}
        if "code" in extra or "error" in extra:
            raise ApiError(
                status,
                extra.get("code", f"invalid_{f.encode_name if f else 'body'}"),
                extra.get("error", message),
                problems=[_problem(path, message)],
            ) from None
    raise ApiError(
        status,
        code,
        "; ".join(f"{path}: {message}" for path, message, _ in found),
        problems=[_problem(path, message) for path, message, _ in found],
    )


def _tagged(model: Any) -> tuple[str, dict[str, Any]] | None:
    """(tag field, member by tag) of a union of tagged Structs, else None."""
    while get_origin(model) is Annotated:
        model = get_args(model)[0]
    members = get_args(model)
    if not members or not all(isinstance(m, type) and issubclass(m, Struct) for m in members):
        return None
    configs = [m.__struct_config__ for m in members]
    fields = {c.tag_field for c in configs}
    if len(fields) != 1 or None in fields:
        return None
    return str(configs[0].tag_field), {str(c.tag): m for c, m in zip(configs, members, strict=True)}


def _problem(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}

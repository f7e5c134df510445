"""libs.domain.jsonvalue and libs.infra.mongo.codec: every JSON value decoded exactly, stored
in BSON and read back as it was sent; bounds refused with a clear error, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import bson
import msgspec
import pytest
from bson.int64 import Int64
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.domain import events, jsonvalue
from libs.domain.bodies import BadRequest, parse_body, parse_request
from libs.domain.jsonvalue import BOUNDS, JsonError
from libs.infra.mongo.codec import escape_key, from_bson, path, to_bson, unescape_key
from tests.support.values import same_json

keys = st.one_of(
    st.sampled_from(["", "$", "$x", ".", "a.b", "\x00", "%", "%25", "%int", "%24", "%2E"]),
    st.text(max_size=10),
)
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_bson_round_trip_is_exact(value: Any) -> None:
    stored = bson.decode(bson.encode({"v": to_bson(value)}))  # what MongoDB holds
    assert same_json(from_bson(stored["v"]), value)


@settings(max_examples=400, deadline=None)
@given(values)
def test_json_decoding_is_exact(value: Any) -> None:
    text = json.dumps(value).encode()
    assert same_json(jsonvalue.loads(text), value)
    assert same_json(jsonvalue.decode(text), value)


@settings(max_examples=300, deadline=None)
@given(keys)
def test_key_escaping_is_reversible_and_storable(key: str) -> None:
    stored = escape_key(key)
    assert unescape_key(stored) == key
    assert stored and "\x00" not in stored and "." not in stored
    assert not stored.startswith("$")


def test_int64_from_pymongo_is_a_plain_int() -> None:
    back = from_bson({"id": Int64(820982911946154508), "n": [Int64(-1)]})
    assert type(back["id"]) is int and type(back["n"][0]) is int
    assert msgspec.json.encode(back) == b'{"id":820982911946154508,"n":[-1]}'


def test_datetimes_and_bytes_pass_as_they_are() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    assert to_bson({"at": now, "raw": b"\x00\xff"}) == {"at": now, "raw": b"\x00\xff"}


def test_query_paths_are_escaped_segment_by_segment() -> None:
    assert path("body.order.id") == "body.order.id"
    assert path("body.$set.a%b") == "body.%24set.a%25b"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"[1e400]", "number_out_of_range"),
        (b'{"a": [-1E+999]}', "number_out_of_range"),
        (b"[NaN]", "invalid_json"),
        (b'["\\ud800"]', "invalid_json"),
        (b"[" * 100_000, "too_deep"),
        (b'{"d":' * (BOUNDS.depth + 1) + b"1" + b"}" * (BOUNDS.depth + 1), "too_deep"),
        (b"[" + b",".join([b"1"] * (BOUNDS.items + 1)) + b"]", "too_many_items"),
        (
            b"{" + b",".join(b'"k%d":1' % i for i in range(BOUNDS.members + 1)) + b"}",
            "too_many_members",
        ),
        (b'{"' + b"k" * (BOUNDS.key_chars + 1) + b'":1}', "key_too_long"),
        (b'{"' + b'\\"' * (BOUNDS.key_chars + 1) + b'":1}', "key_too_long"),
        (b"[1, 2", "invalid_json"),
        (b"[1e400, 18446744073709551616]", "number_out_of_range"),
        (b'[18446744073709551616, "\\ud800"]', "invalid_json"),
        (b"[" + b"1" * 5000 + b"]", "invalid_json"),  # past Python's digit limit
    ],
)
def test_bounds_and_bad_numbers_are_refused_by_name(text: bytes, code: str) -> None:
    with pytest.raises(JsonError) as caught:
        jsonvalue.loads(text)
    assert caught.value.code == code and caught.value.status == 400


def test_bounds_are_inclusive() -> None:
    at_depth = b"[" * BOUNDS.depth + b"]" * BOUNDS.depth
    assert jsonvalue.loads(at_depth) is not None
    wide = b"[" + b",".join([b"1"] * BOUNDS.items) + b"]"
    assert len(jsonvalue.loads(wide)) == BOUNDS.items


def test_top_level_scalars_and_bom() -> None:
    assert jsonvalue.loads(b"\xef\xbb\xbf 7") == 7
    assert jsonvalue.loads(b'"x"') == "x" and jsonvalue.loads(b"null") is None
    assert jsonvalue.loads(b"123456789012345678901234567890") == 123456789012345678901234567890


def test_typed_decoder_falls_back_for_big_integers() -> None:
    request = events.Request(
        method="POST", headers={}, query={}, source_ip=None, content_type=None, size=0
    )
    event = events.EventReceived(
        event_id="e",
        connector_id="c",
        connector_version=1,
        occurred_at=events.utcnow(),
        correlation_id="e",
        request=request,
        body={"id": 2**70, "n": [1.5, -(2**64)]},
        custom_variables={},
        raw=b"\x00\x01",
    )
    back = events.decoder(events.EventReceived).decode(events.encode(event))
    assert back == event and same_json(back.body, event.body)


@pytest.mark.parametrize(
    ("content_type", "raw", "body"),
    [
        (None, b'{"a": 1}', {"a": 1}),
        (None, b"plain words", "plain words"),
        (None, b"\xff\xfe\x00", None),  # binary: kept raw only
        ("application/octet-stream", b"\x89PNG\r\n", None),
        ("image/png", b"not really a png", "not really a png"),
        ("text/plain; charset=iso-8859-1", "café".encode("latin-1"), "café"),
        ("application/json; charset=utf-16", '{"é": 1}'.encode("utf-16"), {"é": 1}),
        ("application/x-www-form-urlencoded", b"a=1&a=2&a=3&b=", {"a": ["1", "2", "3"], "b": ""}),
        ("application/problem+json", b"\xef\xbb\xbf[]", []),
    ],
)
def test_any_content_type_is_accepted(content_type: str | None, raw: bytes, body: Any) -> None:
    assert same_json(parse_request(content_type, raw), body)


@pytest.mark.parametrize(
    ("content_type", "raw", "code"),
    [
        ("text/plain; charset=zlib_codec", b"x", "unsupported_charset"),
        ("text/plain; charset=utf-7", b"x", "unsupported_charset"),
        ("text/plain; charset=utf-8", b"\xff", "invalid_encoding"),
        ("application/json", b"{", "invalid_json"),
        ("multipart/form-data", b"--x\r\n", "invalid_multipart"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken", "invalid_multipart"),
    ],
)
def test_unreadable_bodies_get_a_clear_400(content_type: str, raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request(content_type, raw)
    assert caught.value.code == code and caught.value.status == 400


def test_form_repeats_are_linear_and_fields_bounded() -> None:
    many = b"&".join([b"k=v"] * 10_000)
    assert len(parse_body("application/x-www-form-urlencoded", many)["k"]) == 10_000
    with pytest.raises(BadRequest) as caught:
        parse_body("application/x-www-form-urlencoded", many + b"&k=v")
    assert caught.value.status == 413 and caught.value.code == "too_many_fields"


def _multipart_body(parts: int) -> bytes:
    part = b'--b\r\nContent-Disposition: form-data; name="k"\r\n\r\n\r\n'
    return part * parts + b"--b--\r\n"


def test_multipart_parts_are_bounded_by_count_not_only_by_bytes() -> None:
    """Empty parts cost CPU without data: 10,000 are fields, one more is a 413."""
    content_type = "multipart/form-data; boundary=b"
    assert len(parse_request(content_type, _multipart_body(10_000))["k"]) == 10_000
    with pytest.raises(BadRequest) as caught:
        parse_request(content_type, _multipart_body(10_001))
    assert caught.value.status == 413 and caught.value.code == "too_many_fields"

"""The corpus of real webhook payloads (tests/corpus/<provider>/, sources and licences
in tests/corpus/SOURCES.md) through structure inference, against golden files.

Golden files: tests/golden/corpus/<provider>/<payload>.json, the inferred field list.
Regenerate with ``HOOKLINE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_corpus.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from libs.domain.bodies import parse_request
from libs.domain.paths import resolve
from libs.domain.structure import infer

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
GOLDEN = ROOT / "golden" / "corpus"
PAYLOADS = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".json", ".form"))
REGEN = os.environ.get("HOOKLINE_REGEN_GOLDEN") == "1"
HINT = "regenerate with HOOKLINE_REGEN_GOLDEN=1 (review the diff)"


def content_type(payload: Path) -> str:
    return "application/json" if payload.suffix == ".json" else "application/x-www-form-urlencoded"


def event_of(payload: Path) -> dict[str, Any]:
    body = parse_request(content_type(payload), payload.read_bytes())
    return {"body": body, "custom_variables": {}}


def golden_path(payload: Path) -> Path:
    return GOLDEN / payload.parent.name / f"{payload.stem}.json"


def test_the_corpus_is_large_and_varied() -> None:
    providers = {p.parent.name for p in PAYLOADS}
    assert len(providers) >= 15, sorted(providers)
    assert len(PAYLOADS) >= 100
    assert (CORPUS / "SOURCES.md").is_file()
    listed = (CORPUS / "SOURCES.md").read_text(encoding="utf-8").lower()
    assert all(provider.replace("_", " ") in listed.replace("_", " ") for provider in providers)


@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"{p.parent.name}/{p.stem}" for p in PAYLOADS])
def test_inference_matches_golden(payload: Path) -> None:
    event = event_of(payload)
    structure = infer(event)
    rendered = msgspec.json.format(msgspec.json.encode(structure.fields), indent=2) + b"\n"
    golden = golden_path(payload)
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(rendered)
    assert golden.is_file(), f"missing {golden}; {HINT}"
    assert rendered == golden.read_bytes(), f"{golden} differs; {HINT}"
    # Every learned scalar path reads a value in the event (arrays read their first item).
    for field in structure.fields:
        if "[" not in field.path and field.type not in ("object", "array"):
            assert resolve(event, field.path) is not None or field.example is None, field.path


def test_no_stale_golden_files() -> None:
    wanted = {golden_path(p) for p in PAYLOADS}
    stale = [p for p in GOLDEN.glob("*/*.json") if p not in wanted]
    assert not stale, f"golden files without a payload: {stale}; {HINT}"

"""Settings are the one source of configuration: what a service builds comes from the
Settings it is given, not from the environment read again somewhere below."""

from __future__ import annotations

import pytest

from libs.infra import settings as hsettings
from services.ingest import app as ingest


def test_the_connector_label_cap_comes_from_the_settings_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The environment says otherwise: the Settings object passed in must win.
    monkeypatch.setenv("HOOKLINE_METRICS_MAX_CONNECTORS", "50")
    app = ingest.create_app(hsettings.load({}, metrics_max_connectors=2))
    cap = app[ingest.METRICS].connector
    assert [cap(c) for c in ("a", "b", "c", "a")] == ["a", "b", "other", "a"]


def test_the_environment_reaches_the_settings() -> None:
    loaded = hsettings.load(
        {"HOOKLINE_METRICS_MAX_CONNECTORS": "7", "HOOKLINE_CONFIG_ROLES": "api"}
    )
    assert (loaded.metrics_max_connectors, loaded.roles) == (7, frozenset({"api"}))

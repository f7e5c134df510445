"""The admin-token file: created 0600 and whole, one token however many start at once."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from libs.infra.settings import Settings, ensure_admin_token


def test_token_file_is_private_and_shared(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: ensure_admin_token(settings).admin_token, range(16)))
    assert len(tokens) == 1 and len(tokens.pop()) >= 32
    path = tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["admin-token"]  # no temporary left

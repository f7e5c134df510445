"""The layer contracts in pyproject.toml hold today, and `lint-imports` fails when one breaks.

Each breach is made in a copy of the tree, so the check runs the real import-linter over the
real contracts: the pure core importing a store driver, libs importing a service, one service
importing another.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> Path:
    for name in ("libs", "services"):
        shutil.copytree(
            ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"import-linter is a dev dependency; {LINT_IMPORTS} is missing")


def test_the_contracts_hold_on_this_tree(lint_available: None, tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("libs/domain/paths.py", "import pymongo", "The domain core is pure"),
        ("libs/domain/filters.py", "import structlog", "The domain core is pure"),
        ("libs/infra/settings.py", "import services.ingest", "libs imports no service"),
        ("services/config/models.py", "import aiohttp", "API models and CLI"),
        ("services/config/cli/client.py", "import services.config.app", "API models and CLI"),
        (
            "services/mapper/__init__.py",
            "import services.executor",
            "The services never import each other",
        ),
    ],
)
def test_a_broken_contract_fails_the_lint(
    lint_available: None, tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # a breach made by the test\n")
    result = _lint(tree)
    assert result.returncode != 0
    broken = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), result.stdout

"""Regenerate the structure golden files: tests/golden/structure/<payload>.json.

Run from anywhere:  .venv/bin/python tests/golden/regen_structure.py
then review the diff (git diff tests/golden/structure) before keeping it.
The rendering lives in tests/unit/test_structure.py so test and script cannot disagree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(
        "_test_structure", ROOT / "tests" / "unit" / "test_structure.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    payloads: list[Path] = module.PAYLOADS
    if not payloads:
        print(f"no payloads found in {module.PAYLOADS_DIR}", file=sys.stderr)
        return 1
    golden_dir: Path = module.GOLDEN_DIR
    golden_dir.mkdir(parents=True, exist_ok=True)
    changed = 0
    for payload in payloads:
        target = module.golden_path(payload)
        content = module.render_golden(payload)
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
            changed += 1
            print(f"wrote {target.relative_to(ROOT)}")
    names = {p.name for p in payloads}
    for stale in sorted(golden_dir.glob("*.json")):
        if stale.name not in names:
            stale.unlink()
            changed += 1
            print(f"removed {stale.relative_to(ROOT)}")
    print(f"{len(payloads)} payloads, {changed} golden files changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

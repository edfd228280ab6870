"""The console's front-end files are our own static files: vendored, never from a CDN."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "apps" / "dashboard" / "static" / "dashboard" / "vendor"


def test_every_vendored_library_is_in_the_static_files() -> None:
    manifest = json.loads((ROOT / "frontend" / "vendor.json").read_text())
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())
    for source, name in manifest.items():
        assert (VENDOR / name).is_file(), f"{name}: run `make vendor`"
        package = source.split("/dist/")[0]
        assert f"node_modules/{package}" in lock["packages"], f"{package} is not pinned in the lock file"


def test_no_page_loads_anything_from_another_origin() -> None:
    external = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates" / "dashboard").rglob("*.html")
        if external.search(path.read_text())
    ]
    assert not offenders, offenders

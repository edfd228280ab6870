"""Copies the console's front-end libraries from frontend/node_modules into the static files.

`make vendor` runs `npm ci` (the exact versions of package-lock.json) and then this script, which
copies each file that vendor.json names (package path → file name) into
apps/dashboard/static/dashboard/vendor/. The copies are committed, so running the platform needs no
Node.js; re-running `make vendor` reproduces them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "apps" / "dashboard" / "static" / "dashboard" / "vendor"


def main() -> int:
    manifest = json.loads((HERE / "vendor.json").read_text())
    TARGET.mkdir(parents=True, exist_ok=True)
    for source, name in manifest.items():
        path = HERE / "node_modules" / source
        if not path.is_file():
            print(f"{source} is not in frontend/node_modules: run `make vendor`", file=sys.stderr)
            return 1
        shutil.copyfile(path, TARGET / name)
        print(f"{source} -> {(TARGET / name).relative_to(HERE.parent)} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

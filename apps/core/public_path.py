"""Where a request lands on a tenant's public surface: /t/<slug>/<path> is <path> of that tenant.

Pure path arithmetic, so the request middleware (apps.core.middleware) and the WebSocket router
(apps.tenants.public) split it alike; what a public caller may do is apps/tenants/public.py's.
"""

from __future__ import annotations

import re

# /t/<slug>/<rest>; admin pages and static files stay at the root only (they use sessions).
_PUBLIC_PATH = re.compile(r"^/t/([A-Za-z0-9_-]{1,63})(/.*)?$", re.ASCII)
_ROOT_ONLY = ("/admin/", "/static/")


def split_public_path(path: str) -> tuple[str, str] | None:
    """(slug, the path below /t/<slug>) for a public-surface path, else None."""
    if not path.startswith("/t/"):
        return None
    match = _PUBLIC_PATH.match(path)
    if match is None:
        return None
    rest = match[2] or "/"
    if rest.startswith(_ROOT_ONLY):
        return None
    return match[1], rest

"""The embedded PostgreSQL (with pgvector) that runs when DATABASE_URL is not set.

pgserver ships a real PostgreSQL 16 build with pgvector. Every process that uses the same data
folder attaches to the same server: `make run`, management commands started beside it and the test
run all share it, and the server stops when the last process using it exits.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_server: Any = None


def embedded_server(data_dir: Path) -> Any:
    """Start (or attach to) the embedded PostgreSQL in `data_dir/postgres` and return its handle."""
    global _server
    with _lock:
        if _server is None:
            with warnings.catch_warnings():
                # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; its /tmp fallback is fine.
                warnings.simplefilter("ignore")
                import pgserver

                pgdata = data_dir / "postgres"
                pgdata.mkdir(parents=True, exist_ok=True)
                _server = pgserver.get_server(pgdata, cleanup_mode="stop")
        return _server


def embedded_connection_params(data_dir: Path) -> dict[str, Any]:
    """Connection parameters (socket folder, user, database) for the embedded server."""
    from urllib.parse import parse_qs, urlparse

    uri = urlparse(embedded_server(data_dir).get_uri())
    query = parse_qs(uri.query)
    return {
        "host": query.get("host", [uri.hostname or ""])[0],
        "port": uri.port,
        "user": uri.username or "postgres",
    }

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
                _forget_dead_handles(pgdata)
                _server = pgserver.get_server(pgdata, cleanup_mode="stop")
        return _server


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that died without saying so from pgserver's list of users.

    pgserver stops the server when the last process on its list exits, but a process killed
    outright (or a Celery pool process, which leaves through os._exit) never takes itself off,
    and then the server would outlive everyone."""
    import psutil
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        pids = handles.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.put(alive)


def embedded_server_release(data_dir: Path) -> bool:
    """This process is done with the embedded server: stop it if no other live process uses it.
    Returns whether it is stopped."""
    global _server
    with _lock:
        if _server is None:
            return True
        pgdata = data_dir / "postgres"
        _forget_dead_handles(pgdata)
        _server.cleanup()  # with cleanup_mode="stop": stops the server if this was its last user
        _server = None
        return not (pgdata / "postmaster.pid").exists()


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


def embedded_server_pid(data_dir: Path) -> int | None:
    """The pid of the embedded PostgreSQL's postmaster, or None if it is not running (a zombie,
    one killed whose parent has not reaped it, is not running)."""
    import psutil

    try:
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return pid
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def embedded_server_restart(data_dir: Path) -> int:
    """Start the embedded PostgreSQL again after it died (killed, crashed) under this process,
    which must hold its handle (embedded_server()); returns the new postmaster's pid.

    The lock files of a postmaster that was killed (postmaster.pid, the socket's) still name it;
    PostgreSQL refuses to start over them while that pid exists, a zombie included, so they go
    first."""
    from pgserver.postgres_server import PostgresServer

    server = embedded_server(data_dir)
    lock_file = data_dir / "postgres" / "postmaster.pid"
    with PostgresServer._lock:
        if embedded_server_pid(data_dir) is None:
            # postmaster.pid: pid, data dir, start time, port, socket dir...; the socket's own lock
            # file names the dead postmaster too.
            lines = lock_file.read_text().splitlines() if lock_file.exists() else []
            if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
                socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
                Path(f"{socket}.lock").unlink(missing_ok=True)
                socket.unlink(missing_ok=True)
            lock_file.unlink(missing_ok=True)
            server.ensure_postgres_running()
    pid = embedded_server_pid(data_dir)
    if pid is None:
        raise RuntimeError("PostgreSQL did not start again")
    return pid

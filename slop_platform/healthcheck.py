"""The container health check of a web process: `python -m slop_platform.healthcheck [port]`.

It asks this container's server for `/readyz` (database and Redis reachable) with a Host header
that ALLOWED_HOSTS accepts. Django answers 400 to a Host it does not list, so a plain request to
127.0.0.1 fails wherever ALLOWED_HOSTS names only the public host, as it must in production. The
first listed host is used (`.example.com`, a domain and its subdomains, as `example.com`; `*` as
`localhost`), and nothing is exempted from the Host check. Standard library only: it runs every
few seconds and must not start Django. Exit status 0 when the answer is 200, else 1 with the reason.
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_PORT = 8000


def probe_host(allowed_hosts: str) -> str | None:
    """A Host header value that Django's ALLOWED_HOSTS check lets through, or None if none can be."""
    for entry in (item.strip() for item in allowed_hosts.split(",")):
        if not entry:
            continue
        if entry == "*":
            return "localhost"
        return entry.lstrip(".")
    return None


def check(port: int, allowed_hosts: str, timeout: float = 5.0) -> str | None:
    """None when the server is ready, else why not."""
    host = probe_host(allowed_hosts)
    if host is None:
        return "ALLOWED_HOSTS is empty: the server refuses every request"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/readyz", headers={"Host": host})
        response = connection.getresponse()
        body = response.read(500).decode(errors="replace")
    except OSError as exc:
        return f"no answer on port {port}: {exc}"
    finally:
        connection.close()
    if response.status != 200:
        return f"/readyz (Host: {host}) answered {response.status}: {body}"
    return None


def answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether the application answers HTTP on host:port, whatever it says (a 400 for a Host it does
    not list included). The web server binds its port before its workers have loaded the
    application; until one has, a connection is accepted and left waiting."""
    target = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a comparison
    connection = http.client.HTTPConnection(target, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read(500)
    except OSError:
        return False
    finally:
        connection.close()
    return True


def main(argv: list[str]) -> int:
    port = int(argv[0]) if argv else DEFAULT_PORT
    problem = check(port, os.environ.get("ALLOWED_HOSTS", ""))
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

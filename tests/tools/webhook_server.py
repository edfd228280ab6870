"""A real HTTP server for webhook-tool tests: it checks X-SLOP-Signature like a tenant would and
can answer slowly, hugely, with redirects or errors, or block until released."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from apps.tools.webhooks import SIGNATURE_HEADER, verify_signature


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookServer:
    httpd: ThreadingHTTPServer
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    blocked: threading.Event = field(default_factory=threading.Event)
    block_count: int = 0

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            server.connections += 1
            super().setup()

        def _send(
            self, status: int, body: bytes, content_type: str = "application/json", **headers: str
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            valid = verify_signature(server.secret, self.headers.get(SIGNATURE_HEADER, ""), body)
            server.received.append(Received(self.path, dict(self.headers.items()), body, valid))
            path = self.path.split("?")[0]
            if not valid:
                self._send(401, b'{"error": "bad signature"}')
            elif path == "/echo":
                parameters = json.loads(body)["parameters"]
                self._send(200, json.dumps({"result": {"echo": parameters}}).encode())
            elif path == "/plain":
                self._send(200, json.dumps({"temperature": 21, "unit": "C"}).encode())
            elif path == "/slow":
                time.sleep(3)
                self._send(200, b'{"result": "late"}')
            elif path == "/big":
                self._send(200, b'{"result": "' + b"x" * (2 * 1024 * 1024) + b'"}')
            elif path == "/big-chunked":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(40):
                    chunk = b"x" * 65536
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/redirect":
                self._send(302, b"", Location="http://169.254.169.254/latest/meta-data/")
            elif path == "/fail":
                self._send(500, b"database on fire", content_type="text/plain")
            elif path == "/text":
                self._send(200, b"not json", content_type="text/plain")
            elif path == "/tool-error":
                self._send(200, b'{"error": "city not found"}')
            elif path == "/block-once":
                server.block_count += 1
                if server.block_count == 1:
                    server.blocked.set()
                    server.release.wait(60)
                    return
                self._send(200, b'{"result": "second time lucky"}')
            elif path == "/wait-for-release":
                server.block_count += 1
                server.blocked.set()
                server.release.wait(60)
                self._send(200, b'{"result": {"done": true}}')
            elif path == "/block-always":
                server.block_count += 1
                server.blocked.set()
                server.release.wait(60)
            else:
                self._send(404, b'{"error": "no such path"}')

    return Handler


def start_webhook_server(secret: str = "") -> WebhookServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    server = WebhookServer(httpd=httpd, secret=secret)
    httpd.RequestHandlerClass = _handler(server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return server

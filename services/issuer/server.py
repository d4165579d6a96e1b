"""The local issuer's HTTP side: the OpenID discovery document and the JWKS, read from the key directory on
every request (a rotation shows at once), plus /metrics and /healthz like every process, and the
interactive sign-in of the web console (services/common/local_issuer_login.py)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest

from services.common.local_issuer import LocalIssuer
from services.common.local_issuer_login import InteractiveLogin, LoginSettings

log = logging.getLogger(__name__)
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"


def serve(
    issuer: LocalIssuer,
    host: str,
    port: int,
    registry: CollectorRegistry = REGISTRY,
    login_settings: LoginSettings | None = None,
) -> ThreadingHTTPServer:
    """A started server (in a daemon thread); `shutdown()` stops it."""
    requests = Counter("issuer_requests", "HTTP requests to the local issuer, by path", ["path"], registry=registry)
    login = InteractiveLogin(issuer, login_settings)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if self._login("GET", path):
                return
            if path == DISCOVERY_PATH:
                document = {**issuer.discovery(issuer.issuer + JWKS_PATH), **login.discovery()}
                self._send(200, "application/json", json.dumps(document).encode())
            elif path == JWKS_PATH:
                self._send(200, "application/json", json.dumps(issuer.jwks()).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                self._send(200, "text/plain", b"ok\n")
            else:
                self._send(404, "text/plain", b"not found\n")
                return
            requests.labels(path).inc()

        def do_POST(self) -> None:
            if not self._login("POST", self.path.split("?")[0]):
                self._send(404, "text/plain", b"not found\n")

        def _login(self, method: str, path: str) -> bool:
            """Hands the interactive sign-in's requests to it; False for every other path."""
            declared = self.headers.get("Content-Length", "0") if method == "POST" else "0"
            length = int(declared) if declared.isdigit() else 0
            body = self.rfile.read(min(length, 65_536)) if length > 0 else b""
            reply = login.handle(method, path, self.path.partition("?")[2], body)
            if reply is None:
                return False
            self._send(reply.status, reply.content_type, reply.body, reply.headers)
            requests.labels(path).inc()
            return True

        def _send(self, status: int, content_type: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="local-issuer", daemon=True).start()
    return server

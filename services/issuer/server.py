"""The local issuer's HTTP side: the OpenID discovery document and the JWKS, read from the key directory on
every request (a rotation shows at once), plus /metrics and /healthz like every process."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest

from services.common.local_issuer import LocalIssuer

log = logging.getLogger(__name__)
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"


def serve(issuer: LocalIssuer, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> ThreadingHTTPServer:
    """A started server (in a daemon thread); `shutdown()` stops it."""
    requests = Counter("issuer_requests", "HTTP requests to the local issuer, by path", ["path"], registry=registry)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == DISCOVERY_PATH:
                self._send(200, "application/json", json.dumps(issuer.discovery(issuer.issuer + JWKS_PATH)).encode())
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

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="local-issuer", daemon=True).start()
    return server

"""A local issuer with the interactive sign-in on a free port, for tests of the real OIDC flow: discovery,
JWKS, /authorize and /token in one small HTTP server."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from services.common.local_issuer import LocalIssuer
from services.common.local_issuer_login import InteractiveLogin, Reply


@dataclass
class RunningIssuer:
    issuer: LocalIssuer
    login: InteractiveLogin

    @property
    def url(self) -> str:
        return self.issuer.issuer


@contextmanager
def running_issuer() -> Iterator[RunningIssuer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    issuer = LocalIssuer(Path(tempfile.mkdtemp(prefix="catalyst-console-issuer-")), url, "catalyst")
    issuer.ensure_key()
    login = InteractiveLogin(issuer)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = login.handle(method, parts.path, parts.query, body)
            if reply is None and parts.path == "/.well-known/openid-configuration":
                document = {**issuer.discovery(url + "/jwks.json"), **login.discovery()}
                reply = Reply(200, "application/json", json.dumps(document).encode())
            elif reply is None and parts.path == "/jwks.json":
                reply = Reply(200, "application/json", json.dumps(issuer.jwks()).encode())
            reply = reply or Reply(404, "text/plain", b"not found")
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:
            return

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningIssuer(issuer, login)
    finally:
        server.shutdown()
        server.server_close()

"""An HTTP front for the real Elasticsearch that can answer as a cluster whose key expired.

The fault cluster runs with security off, so it never says 401 itself. While
`refusing` is set, this front answers every request exactly as Elasticsearch
with security on answers an expired or revoked API key (401, a
`security_exception` body, the `WWW-Authenticate` challenges); otherwise it
passes the request through to the real node, byte for byte. The indexer talks
to the front as it would to the cluster.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

EXPIRED_KEY = {
    "error": {
        "root_cause": [{"type": "security_exception", "reason": "api key is expired"}],
        "type": "security_exception",
        "reason": "api key is expired",
        "header": {"WWW-Authenticate": ['Basic realm="security", charset="UTF-8"', "ApiKey"]},
    },
    "status": 401,
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class ElasticsearchGate:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 9200)
        self.refusing = threading.Event()
        self.refused = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if gate.refusing.is_set():
                    gate.refused += 1
                    self._answer(
                        401,
                        json.dumps(EXPIRED_KEY).encode(),
                        [("Content-Type", "application/json"), ("WWW-Authenticate", "ApiKey")],
                    )
                    return
                upstream = http.client.HTTPConnection(*gate._upstream, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    self._answer(
                        answer.status,
                        payload,
                        [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP],
                    )
                finally:
                    upstream.close()

            def _answer(self, status: int, payload: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

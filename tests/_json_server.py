"""A base for the fake prediction endpoints the web-app tests start on loopback: JSON answers, no request log."""

import http.server
import json


class JsonHandler(http.server.BaseHTTPRequestHandler):
    def raw_answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``body`` as ``application/json`` (and extra ``headers``)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``payload`` encoded as JSON."""
        self.raw_answer(status, json.dumps(payload).encode(), headers)

    def log_message(self, *args):
        pass

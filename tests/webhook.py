"""A real local webhook for the outbox tests: it records what it is sent and can be down at first."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List


class RecordingWebhook:
    """Answers 503 to the first `failures` POSTs, then 204; keeps every status and each accepted JSON body.

    `port` 0 takes a free one; a test that needs the webhook to be unreachable first picks a port, lets
    a request fail on it, then starts this on that port.
    """

    def __init__(self, failures: int = 0, port: int = 0, path: str = "/hook") -> None:
        self.failures = failures
        self.received: List[Dict[str, Any]] = []
        self.statuses: List[int] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if len(webhook.statuses) < webhook.failures else 204
                webhook.statuses.append(status)
                if status == 204:
                    webhook.received.append(body)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # the test output stays readable

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

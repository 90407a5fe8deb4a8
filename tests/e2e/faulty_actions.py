"""An action server that misbehaves on demand: a proxy in front of the real one.

`hang(name)`: the next call of that action is never passed on and gets no answer (an overloaded or
stuck action server). `late(name)`: the next call is passed on at once, but its answer is held back past
Rasa's action timeout (the action did its work, e.g. stored a booking, and Rasa stopped waiting).
Every other call is passed through unchanged.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List

import requests


class FaultyActionServer:
    def __init__(self, hold_seconds: float = 3.0) -> None:
        self.target = ""
        self.hold_seconds = hold_seconds
        self.faults: Dict[str, str] = {}
        self.calls: List[str] = []
        self.faulted: List[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy._answer(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hang(self, action: str) -> None:
        self.faults[action] = "hang"

    def late(self, action: str) -> None:
        self.faults[action] = "late"

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        name = str(json.loads(body).get("next_action"))
        with self._lock:
            self.calls.append(name)
            fault = self.faults.pop(name, None)
            if fault:
                self.faulted.append(name)
        if fault == "hang":
            time.sleep(self.hold_seconds)
            handler.close_connection = True
            return
        answer = requests.post(self.target, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        if fault == "late":
            time.sleep(self.hold_seconds)
        try:
            handler.send_response(answer.status_code)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(answer.content)))
            handler.end_headers()
            handler.wfile.write(answer.content)
        except OSError:
            pass  # Rasa gave up waiting and closed the connection

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

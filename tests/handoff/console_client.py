"""Runs the staff console in a background thread and talks to it like a browser would."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from http.cookies import SimpleCookie
from typing import Any, Dict

import requests
from aiohttp import web

from bot.handoff.clock import Clock
from bot.handoff.config import HandoffSettings
from bot.handoff.console.routes import register_staff_console
from bot.handoff.rasa_api import ConversationControl
from bot.web.server import content_security_policy, security_headers

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ConsoleServer:
    def __init__(self, settings: HandoffSettings, clock: Clock, rasa: ConversationControl) -> None:
        self.app = web.Application(middlewares=[security_headers(content_security_policy("http://localhost:1"))])
        register_staff_console(self.app, settings, clock, rasa, start_workers=False)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Browser:
    """Keeps cookies itself: `requests` would not send a Secure cookie over plain http to 127.0.0.1."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: Dict[str, str] = {}
        self.raw_set_cookies: list = []

    def _remember(self, response: requests.Response) -> None:
        for header in response.raw.headers.getlist("Set-Cookie"):
            self.raw_set_cookies.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        response = requests.get(self.base_url + path, cookies=self.cookies, allow_redirects=False, timeout=10, **kwargs)
        self._remember(response)
        return response

    def post(self, path: str, data: Dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        response = requests.post(
            self.base_url + path, data=data or {}, cookies=self.cookies, allow_redirects=False, timeout=10, **kwargs
        )
        self._remember(response)
        return response

    def csrf_from(self, path: str) -> str:
        match = CSRF_FIELD.search(self.get(path).text)
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    def log_in(self, username: str, password: str) -> requests.Response:
        token = self.csrf_from("/staff/login")
        return self.post("/staff/login", {"username": username, "password": password, "csrf_token": token})

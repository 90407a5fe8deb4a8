"""The website server: headers on every response, the socket.io client served from node_modules only
under its own name, and a clear error when `npm ci` has not run. (`make unit` runs `npm ci` first.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.settings import ConfigError, runtime
from bot.web import server

T = TypeVar("T")


def with_client(check: Callable[[TestClient], Awaitable[T]]) -> T:
    async def run() -> T:
        app = server.create_app(runtime(), "http://localhost:5005")
        async with TestClient(TestServer(app)) as client:
            return await check(client)

    return asyncio.run(run())


def test_csp_allows_only_this_site_and_the_rasa_server() -> None:
    csp = server.content_security_policy("https://chat.example:5005")
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "connect-src 'self' https://chat.example:5005 wss://chat.example:5005;" in csp
    assert "unsafe" not in csp


@pytest.mark.parametrize("path", ["/", "/widget/chat-widget.js", "/widget/vendor/socket.io.min.js", "/missing"])
def test_every_response_has_the_security_headers(path: str) -> None:
    async def check(client: TestClient) -> None:
        response = await client.get(path)
        assert response.status == (404 if path == "/missing" else 200)
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"

    with_client(check)


def test_only_named_vendor_files_are_served() -> None:
    async def check(client: TestClient) -> None:
        ok = await client.get("/widget/vendor/socket.io.min.js")
        assert ok.status == 200 and "javascript" in ok.headers["Content-Type"]
        for path in ("/widget/vendor/socket.io.js", "/widget/vendor/..%2Fpackage.json", "/widget/vendor/x"):
            assert (await client.get(path)).status == 404, path

    with_client(check)


def test_the_page_passes_the_server_url_to_the_widget_and_escapes_it() -> None:
    async def run() -> str:
        app = server.create_app(runtime(), 'http://localhost:5005"><script>x</script>')
        async with TestClient(TestServer(app)) as client:
            return await (await client.get("/")).text()

    page = asyncio.run(run())
    assert 'data-server="http://localhost:5005&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    assert "<script>x</script>" not in page


def test_missing_node_modules_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(server.VENDOR_FILES, "socket.io.min.js", tmp_path / "absent.js")
    with pytest.raises(ConfigError, match="npm ci"):
        server.create_app(runtime(), "http://localhost:5005")

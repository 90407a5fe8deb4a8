"""A small aiohttp server for the practice's page and the chat widget's files."""

from __future__ import annotations

from pathlib import Path
from typing import Awaitable, Callable

import jinja2
from aiohttp import web

from bot.settings import Runtime, practice, runtime

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_security_policy(rasa_url: str) -> str:
    socket_url = rasa_url.replace("http://", "ws://").replace("https://", "wss://")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {rasa_url} {socket_url}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(csp: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    return add_headers


def create_app(settings: Runtime, public_rasa_url: str) -> web.Application:
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    app = web.Application(middlewares=[security_headers(content_security_policy(public_rasa_url))])

    async def index(_: web.Request) -> web.Response:
        page = templates.get_template("index.html").render(
            practice=practice(), facts=practice().template_values(), rasa_url=public_rasa_url
        )
        return web.Response(text=page, content_type="text/html")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)
    app.router.add_static("/static/", STATIC_DIR)
    # Staff console and handoff workers (issue 7): everything under /staff lives in bot/handoff/console.
    from bot.handoff.console.routes import register_staff_console

    register_staff_console(app)
    return app


def main() -> None:
    settings = runtime()
    web.run_app(create_app(settings, settings.rasa_url), host=settings.host, port=settings.web_port, print=None)

"""A small aiohttp server for the practice's page and the chat widget's files.

Everything a visitor's browser loads comes from here (the socket.io client straight out of
node_modules, installed by `npm ci`), so no request ever goes to a third party.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Awaitable, Callable, Dict

import jinja2
from aiohttp import web

from bot.settings import PROJECT_ROOT, ConfigError, Runtime, practice, runtime
from bot.web.page import load_page_content, tel_href, widget_settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
WIDGET_DIR = HERE / "widget"
NODE_MODULES = PROJECT_ROOT / "node_modules"
# Third-party browser files served from node_modules (never copied into the repository).
VENDOR_FILES: Dict[str, Path] = {
    "socket.io.min.js": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
    "socket.io.min.js.map": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js.map",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_security_policy(rasa_url: str) -> str:
    socket_url = rasa_url.replace("http://", "ws://").replace("https://", "wss://")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {rasa_url} {socket_url}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(csp: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:  # 404s and friends get the same headers
            response = error
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return add_headers


def missing_vendor_files() -> list[str]:
    return [str(path) for path in VENDOR_FILES.values() if not path.exists()]


def create_app(settings: Runtime, public_rasa_url: str) -> web.Application:
    missing = missing_vendor_files()
    if missing:
        raise ConfigError(f"the chat widget needs {missing[0]}: run `npm ci` (make run does it for you)")
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    facts = practice()
    page = templates.get_template("index.html").render(
        practice=facts,
        facts=facts.template_values(),
        content=load_page_content(),
        hours=facts.hours.describe(),
        emergency_href=tel_href(facts.crisis["emergency_number"]),
        lifeline_href=tel_href(facts.crisis["lifeline_number"]),
        lifeline_sms=tel_href(facts.crisis["lifeline_number"]).replace("tel:", "sms:"),
        widget=widget_settings(facts, public_rasa_url),
    )
    app = web.Application(middlewares=[security_headers(content_security_policy(public_rasa_url))])

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def vendor(request: web.Request) -> web.FileResponse:
        path = VENDOR_FILES.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)
    # Registered before the /widget/ folder so that it wins for these names.
    app.router.add_get("/widget/vendor/{name}", vendor)
    app.router.add_static("/widget/", WIDGET_DIR)
    app.router.add_static("/static/", STATIC_DIR)
    # Staff console and handoff workers (issue 7): everything under /staff lives in bot/handoff/console.
    from bot.handoff.console.routes import register_staff_console

    register_staff_console(app)
    return app


def log_staff_side() -> None:
    """The staff side's own lines (which event source, broker connection, retries) at INFO on stderr.
    Only `bot.handoff`: aiohttp's access log would write query strings, so it stays off."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    staff = logging.getLogger("bot.handoff")
    staff.setLevel(logging.INFO)
    staff.addHandler(handler)
    staff.propagate = False


def main() -> None:
    log_staff_side()
    settings = runtime()
    web.run_app(create_app(settings, settings.rasa_url), host=settings.host, port=settings.web_port, print=None)

"""Browser tests: the real servers (started with the launcher's own pieces, so that the Rasa server can
be stopped on its own) and Debian's chromium driven by Playwright.

Every request any page makes is recorded; a page that talked to anything but the local servers fails
its test.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Literal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bot import launcher
from bot.settings import PROJECT_ROOT, Runtime
from tests.e2e.conftest import CHROMIUM, free_port
from tests.e2e.conftest import CHROMIUM_ARGS as SHARED_CHROMIUM_ARGS

# Two more flags: these tests fail on any request that leaves the local servers, so no update checks.
CHROMIUM_ARGS = [*SHARED_CHROMIUM_ARGS, "--disable-component-update", "--no-first-run"]
Motion = Literal["no-preference", "reduce"]
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
AXE_SCRIPT = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"


@dataclass
class Stack:
    settings: Runtime
    children: List[launcher.Child]
    token: str
    requests: List[str] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        return self.settings.web_url

    @property
    def rasa_url(self) -> str:
        return self.settings.rasa_url

    def local_origins(self) -> set[str]:
        web, rasa = urlsplit(self.web_url), urlsplit(self.rasa_url)
        return {
            f"http://{web.netloc}",
            f"http://{rasa.netloc}",
            f"ws://{rasa.netloc}",
        }

    def stop_rasa(self) -> None:
        rasa = next(child for child in self.children if child.name == "rasa")
        os.killpg(rasa.process.pid, signal.SIGTERM)
        rasa.process.wait(timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not launcher.MODEL_PATH.exists():
        pytest.fail(f"no trained model at {launcher.MODEL_PATH}: run `make train` first (make test does)")
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: `make browser` installs it (apt-get install -y chromium)")
    if not AXE_SCRIPT.exists():
        pytest.fail("node_modules is missing: `make node-deps` runs npm ci")
    var_dir = tmp_path_factory.mktemp("browser-var")
    settings = Runtime(
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        host="127.0.0.1",
        var_dir=var_dir,
        database_url=f"sqlite:///{var_dir / 'app.db'}",
        site_origin="",
    )
    settings = dataclasses.replace(settings, site_origin=settings.web_url)
    log_dir = var_dir / "logs"
    log_dir.mkdir()
    token = launcher.auth_token(settings)
    endpoints = launcher.write_endpoints(settings)
    env = launcher.child_environment(settings)
    env.update(
        RASA_PORT=str(settings.rasa_port),
        ACTIONS_PORT=str(settings.actions_port),
        WEB_PORT=str(settings.web_port),
        BOT_VAR_DIR=str(var_dir),
        DATABASE_URL=settings.database_url,
    )
    children: List[launcher.Child] = []
    try:
        for name, command in launcher.commands(settings, token, endpoints).items():
            children.append(launcher.start(name, command, env, log_dir))
        launcher.wait_until_ready(settings, children, token)
        yield Stack(settings, children, token)
    except launcher.LaunchError as error:
        logs = "\n".join(path.read_text(errors="replace")[-3000:] for path in log_dir.glob("*.log"))
        pytest.fail(f"the servers did not start: {error}\n{logs}")
    finally:
        launcher.stop(children)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser, stack: Stack) -> Iterator[Callable[..., Page]]:
    """A factory for pages in fresh browser contexts; every request they make is recorded and checked."""
    contexts: List[BrowserContext] = []
    seen: List[str] = []

    def make(width: int = 1280, height: int = 860, reduced_motion: Motion = "no-preference") -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, reduced_motion=reduced_motion)
        context.on("request", lambda request: seen.append(request.url))
        contexts.append(context)
        page = context.new_page()
        page.on("websocket", lambda ws: seen.append(ws.url))
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()
    stack.requests.extend(seen)
    foreign = sorted({url for url in seen if origin(url) not in stack.local_origins()})
    assert not foreign, f"requests left the local servers: {foreign}"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

"""The staff console under /staff. The website registers it with one call: `register_staff_console(app)`.

Every page needs a logged-in staff member (401 otherwise), admin pages need the admin role (403), and
every POST needs the session's CSRF token. Pages are Jinja2 with autoescape; scripts are static files,
so the website's Content-Security-Policy (script-src 'self', no inline) holds here too.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from bot.db import session_scope
from bot.handoff import accounts, audit, login_limits, tickets
from bot.handoff.clock import Clock, SystemClock, as_utc
from bot.handoff.config import HandoffSettings, load_settings
from bot.handoff.console import sessions
from bot.handoff.console.booking import booking_for
from bot.handoff.models import ROLES, STATUS_CLAIMED, STATUS_CLOSED, StaffAccount, Ticket
from bot.handoff.rasa_api import ConversationControl, RasaUnavailable
from bot.handoff.routing import conversation_control
from bot.handoff.transcript import TrackerStoreReader, to_entries
from bot.handoff.watcher import BackgroundWorkers
from bot.handoff.wording import wording
from bot.safety.models import RiskEvent
from bot.settings import practice

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
PREFIX = "/staff"
CONSOLE_KEY = web.AppKey("staff_console", object)


@dataclass(frozen=True)
class Viewer:
    """The logged-in staff member of this request (a plain copy, safe outside the DB session)."""

    id: int
    username: str
    first_name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Console:
    def __init__(self, settings: HandoffSettings, clock: Clock, rasa: ConversationControl) -> None:
        self.settings = settings
        self.clock = clock
        self.rasa = rasa
        self.words = wording()
        self.reader = TrackerStoreReader(settings.tracker_store_url)
        self.limiter = login_limits.LoginLimiter(
            settings.database_url, clock, settings.login_max_failures, settings.login_window_minutes
        )
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["local"] = self.local_time
        self.templates.globals.update(reason_labels=self.words.reasons, practice_name=practice().name)

    def local_time(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return practice().local_now(as_utc(moment)).strftime("%a %d %b %H:%M")

    # --- rendering ----------------------------------------------------------------------------------
    def page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("viewer", None)
        text = self.templates.get_template(template).render(prefix=PREFIX, **context)
        response = web.Response(text=text, status=status, content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def login_page(self, status: int = 200, error: str = "") -> web.Response:
        token = sessions.new_token()
        response = self.page("login.html", status=status, csrf_token=token, error=error)
        self._set_cookie(response, sessions.LOGIN_CSRF_COOKIE, token)
        return response

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        # Secure: browsers accept it on http://localhost too (a "potentially trustworthy" origin).
        response.set_cookie(
            name, value, path=PREFIX, httponly=True, secure=self.settings.secure_cookies, samesite="Strict"
        )

    # --- who is asking ------------------------------------------------------------------------------
    def viewer(self, request: web.Request, admin: bool = False, touch: bool = True) -> Viewer:
        with session_scope(self.settings.database_url) as session:
            record = sessions.find(
                session,
                self.clock,
                request.cookies.get(sessions.COOKIE_NAME),
                self.settings.idle_timeout_minutes,
                touch,
            )
            viewer = None
            if record is not None:
                staff = record.staff
                viewer = Viewer(staff.id, staff.username, staff.first_name, staff.role, record.csrf_token)
        if viewer is None:
            if request.path.startswith(f"{PREFIX}/api/") or request.method != "GET":
                raise web.HTTPUnauthorized(text=self.words.not_logged_in, headers={"Cache-Control": "no-store"})
            raise self._as_http(self.login_page(status=401), web.HTTPUnauthorized)
        if admin and not viewer.is_admin:
            title, message = self.words.admins_only_title, self.words.admins_only
            page = self.page("message.html", status=403, viewer=viewer, title=title, message=message)
            raise self._as_http(page, web.HTTPForbidden)
        return viewer

    @staticmethod
    def _as_http(page: web.Response, error: type[web.HTTPException]) -> web.HTTPException:
        exception = error(text=page.text, content_type="text/html", headers={"Cache-Control": "no-store"})
        for cookie in page.cookies.values():
            exception.headers.add("Set-Cookie", cookie.output(header="").strip())
        return exception

    async def form(self, request: web.Request, viewer: Viewer) -> Dict[str, str]:
        """The POSTed form, after checking the CSRF token (and the Origin, when the browser sends one)."""
        self._check_origin(request)
        data = await request.post()
        given = request.headers.get("X-CSRF-Token") or str(data.get("csrf_token", ""))
        if not sessions.same_secret(viewer.csrf_token, given):
            raise web.HTTPForbidden(text=self.words.csrf_refused)
        return {key: str(value) for key, value in data.items()}

    def _check_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text=self.words.cross_site_refused)

    def load_ticket(self, session: Any, request: web.Request) -> Ticket:
        try:
            ticket_id = int(request.match_info["ticket_id"])
        except ValueError as error:
            raise web.HTTPNotFound() from error
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise web.HTTPNotFound(text=self.words.no_such_ticket)
        return ticket

    def staff_row(self, session: Any, viewer: Viewer) -> StaffAccount:
        staff = session.get(StaffAccount, viewer.id)
        assert staff is not None
        return staff

    # --- login / logout -----------------------------------------------------------------------------
    async def get_login(self, request: web.Request) -> web.Response:
        return self.login_page()

    async def post_login(self, request: web.Request) -> web.Response:
        self._check_origin(request)
        data = await request.post()
        if not sessions.same_secret(request.cookies.get(sessions.LOGIN_CSRF_COOKIE), str(data.get("csrf_token", ""))):
            raise web.HTTPForbidden(text=self.words.login_csrf_refused)
        username, password = str(data.get("username", "")), str(data.get("password", ""))
        address = login_limits.client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), self.settings.trusted_proxies
        )
        named = username[:80] or "(empty)"

        def check() -> str | login_limits.Refusal | None:
            attempt = self.limiter.reserve(address, username)
            if isinstance(attempt, login_limits.Refusal):
                # Not audited one by one: a flood of refused guesses must not flood the audit log too.
                return attempt
            with session_scope(self.settings.database_url) as session:
                staff = accounts.authenticate(session, username, password)
                if staff is None:
                    audit.record(session, self.clock, None, "login_failed", username=named, detail={"address": address})
                    for lockout in self.limiter.lockouts_started(session, attempt):
                        detail = {"scope": lockout.scope, "address": address, "until": lockout.until.isoformat()}
                        audit.record(session, self.clock, None, "login_locked", username=named, detail=detail)
                    return None
                self.limiter.succeeded(session, attempt)
                staff.last_login_at = self.clock.now()
                token, _ = sessions.start(session, self.clock, staff)
                audit.record(session, self.clock, staff, "login")
                return token

        outcome = await asyncio.to_thread(check)  # argon2 is slow on purpose; keep the event loop free
        if isinstance(outcome, login_limits.Refusal):
            return self.refused_login(outcome)
        if outcome is None:
            return self.login_page(status=401, error=self.words.wrong_login)
        response = web.HTTPSeeOther(f"{PREFIX}/")
        self._set_cookie(response, sessions.COOKIE_NAME, outcome)
        response.del_cookie(sessions.LOGIN_CSRF_COOKIE, path=PREFIX)
        raise response

    def refused_login(self, refusal: login_limits.Refusal) -> web.Response:
        """429 with when to come back; the same words whether the address or the name is locked."""
        seconds = max(1, math.ceil((refusal.retry_at - self.clock.now()).total_seconds()))
        error = self.words.lockout(self.local_time(refusal.retry_at), math.ceil(seconds / 60))
        response = self.login_page(status=429, error=error)
        response.headers["Retry-After"] = str(seconds)
        return response

    async def post_logout(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request)
        await self.form(request, viewer)
        with session_scope(self.settings.database_url) as session:
            sessions.end(session, request.cookies.get(sessions.COOKIE_NAME))
            audit.record(session, self.clock, self.staff_row(session, viewer), "logout")
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(sessions.COOKIE_NAME, path=PREFIX)
        raise response

    # --- queue --------------------------------------------------------------------------------------
    def queue_rows(self) -> List[Dict[str, Any]]:
        now = self.clock.now()
        with session_scope(self.settings.database_url) as session:
            return [
                {
                    "id": ticket.id,
                    "url": f"{PREFIX}/tickets/{ticket.id}",
                    "priority": tickets.priority_label(ticket),
                    "reason": self.words.reasons.get(ticket.reason, ticket.reason),
                    "status": ticket.status,
                    "claimed_by": ticket.claimed_by.first_name if ticket.claimed_by else "",
                    "waiting_minutes": int((now - as_utc(ticket.created_at)).total_seconds() // 60),
                    "opened": self.local_time(ticket.created_at),
                    "handed_back": ticket.handed_back_at is not None,
                    "visitor_wrote": self.local_time(ticket.last_visitor_message_at),
                }
                for ticket in tickets.queue(session)
            ]

    async def get_queue(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request)
        return self.page("queue.html", viewer=viewer, rows=self.queue_rows())

    async def api_queue(self, request: web.Request) -> web.Response:
        self.viewer(request, touch=False)
        return web.json_response({"tickets": self.queue_rows()}, headers={"Cache-Control": "no-store"})

    # --- ticket -------------------------------------------------------------------------------------
    async def get_ticket(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request)
        with session_scope(self.settings.database_url) as session:
            ticket = self.load_ticket(session, request)
            audit.record(session, self.clock, self.staff_row(session, viewer), "transcript_viewed", ticket.id)
            risk_events = (
                session.query(RiskEvent)
                .filter(RiskEvent.conversation_id == ticket.conversation_id)
                .order_by(RiskEvent.id)
                .all()
            )
            claimed_by = ticket.claimed_by.first_name if ticket.claimed_by else ""
        entries = to_entries(self.reader.conversation(ticket.conversation_id))
        return self.page(
            "ticket.html",
            viewer=viewer,
            ticket=ticket,
            priority=tickets.priority_label(ticket),
            claimed_by=claimed_by,
            entries=entries,
            last_event_id=entries[-1].event_id if entries else 0,
            risk_events=risk_events,
            booking=booking_for(ticket.conversation_id),
            is_closed=ticket.status == STATUS_CLOSED,
            error=request.query.get("error", ""),
        )

    async def api_transcript(self, request: web.Request) -> web.Response:
        """New transcript lines since `after` for the open ticket page (its view was audited on load)."""
        self.viewer(request, touch=False)
        with session_scope(self.settings.database_url) as session:
            ticket = self.load_ticket(session, request)
            status, conversation_id = ticket.status, ticket.conversation_id
        try:
            after = int(request.query.get("after", "0"))
        except ValueError as error:
            raise web.HTTPBadRequest(text=self.words.after_not_a_number) from error
        entries = to_entries(self.reader.conversation(conversation_id, after))
        return web.json_response(
            {"status": status, "entries": [entry.as_json() for entry in entries]}, headers={"Cache-Control": "no-store"}
        )

    def _back(self, ticket_id: int, error: str = "") -> web.HTTPSeeOther:
        suffix = f"?error={quote(error)}" if error else ""
        return web.HTTPSeeOther(f"{PREFIX}/tickets/{ticket_id}{suffix}")

    async def _act(
        self,
        request: web.Request,
        change: Callable[[Any, Ticket, StaffAccount, Dict[str, str]], Callable[[], None] | None],
    ) -> web.Response:
        """Runs a ticket action: CSRF check, the DB change (audited), then any Rasa call outside the transaction."""
        viewer = self.viewer(request)
        data = await self.form(request, viewer)
        # The Rasa call runs before the commit: if Rasa refuses, the ticket and the audit log stay as they were.
        with session_scope(self.settings.database_url) as session:
            ticket = self.load_ticket(session, request)
            ticket_id = ticket.id
            try:
                follow_up = change(session, ticket, self.staff_row(session, viewer), data)
            except tickets.TicketError as error:
                raise self._back(ticket_id, str(error)) from error
            if follow_up is not None:
                try:
                    await asyncio.to_thread(follow_up)
                except RasaUnavailable as error:
                    log.warning("staff action on ticket %s could not reach Rasa: %s", ticket_id, error)
                    raise self._back(ticket_id, self.words.rasa_down) from error
        raise self._back(ticket_id)

    async def post_claim(self, request: web.Request) -> web.Response:
        def change(session: Any, ticket: Ticket, staff: StaffAccount, _: Dict[str, str]) -> None:
            tickets.claim(session, self.clock, ticket, staff)

        return await self._act(request, change)

    async def post_reply(self, request: web.Request) -> web.Response:
        def change(session: Any, ticket: Ticket, staff: StaffAccount, data: Dict[str, str]) -> Callable[[], None]:
            text = data.get("text", "").strip()
            if not text:
                raise tickets.TicketError(self.words.reply_empty)
            if ticket.status == STATUS_CLOSED:
                raise tickets.TicketError(self.words.ticket_closed)
            if ticket.claimed_by_id not in (None, staff.id):
                raise tickets.TicketError(self.words.claimed_by_other)
            if ticket.status != STATUS_CLAIMED:
                tickets.claim(session, self.clock, ticket, staff)
            audit.record(session, self.clock, staff, "reply_sent", ticket.id, {"characters": len(text)})
            conversation, name = ticket.conversation_id, staff.first_name
            return lambda: self.rasa.staff_reply(conversation, text[:2000], name)

        return await self._act(request, change)

    def _resume(self, conversation_id: str) -> Callable[[], None]:
        def resume() -> None:
            self.rasa.resume(conversation_id)
            self.rasa.utter(conversation_id, "utter_handoff_resumed")

        return resume

    async def post_hand_back(self, request: web.Request) -> web.Response:
        def change(session: Any, ticket: Ticket, staff: StaffAccount, _: Dict[str, str]) -> Callable[[], None]:
            if ticket.status == STATUS_CLOSED:
                raise tickets.TicketError(self.words.ticket_closed)
            if ticket.status != STATUS_CLAIMED:
                tickets.claim(session, self.clock, ticket, staff)
            ticket.handed_back_at = self.clock.now()
            audit.record(session, self.clock, staff, "handed_back", ticket.id)
            return self._resume(ticket.conversation_id)

        return await self._act(request, change)

    async def post_close(self, request: web.Request) -> web.Response:
        def change(
            session: Any, ticket: Ticket, staff: StaffAccount, data: Dict[str, str]
        ) -> Callable[[], None] | None:
            was_handed_back = ticket.handed_back_at is not None
            tickets.close(session, self.clock, ticket, staff, data.get("outcome_note", ""))
            return None if was_handed_back else self._resume(ticket.conversation_id)

        return await self._act(request, change)

    # --- admin --------------------------------------------------------------------------------------
    async def get_staff_admin(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request, admin=True)
        with session_scope(self.settings.database_url) as session:
            staff = session.query(StaffAccount).order_by(StaffAccount.username).all()
        return self.page(
            "admin_staff.html", viewer=viewer, staff=staff, roles=ROLES, error=request.query.get("error", "")
        )

    async def post_staff_create(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request, admin=True)
        data = await self.form(request, viewer)

        def create() -> str:
            try:
                with session_scope(self.settings.database_url) as session:
                    created = accounts.create_account(
                        session,
                        self.clock,
                        data.get("username", ""),
                        data.get("first_name", ""),
                        data.get("password", ""),
                        data.get("role", ""),
                    )
                    audit.record(
                        session,
                        self.clock,
                        self.staff_row(session, viewer),
                        "staff_created",
                        detail={"username": created.username, "role": created.role},
                    )
            except accounts.AccountError as error:
                return str(error)
            return ""

        error = await asyncio.to_thread(create)
        raise web.HTTPSeeOther(f"{PREFIX}/admin/staff" + (f"?error={quote(error)}" if error else ""))

    async def post_staff_active(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request, admin=True)
        data = await self.form(request, viewer)
        with session_scope(self.settings.database_url) as session:
            staff = session.get(StaffAccount, int(request.match_info["staff_id"]))
            if staff is None:
                raise web.HTTPNotFound()
            if staff.id == viewer.id:
                raise web.HTTPSeeOther(f"{PREFIX}/admin/staff?error={quote(self.words.cannot_deactivate_self)}")
            staff.active = data.get("active") == "1"
            audit.record(
                session,
                self.clock,
                self.staff_row(session, viewer),
                "staff_activated" if staff.active else "staff_deactivated",
                detail={"username": staff.username},
            )
        raise web.HTTPSeeOther(f"{PREFIX}/admin/staff")

    async def get_audit(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request, admin=True)
        with session_scope(self.settings.database_url) as session:
            entries = audit.latest(session)
            audit.record(session, self.clock, self.staff_row(session, viewer), "audit_log_viewed")
        return self.page("audit.html", viewer=viewer, entries=entries)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def register_staff_console(
    app: web.Application,
    settings: HandoffSettings | None = None,
    clock: Clock | None = None,
    rasa: ConversationControl | None = None,
    start_workers: bool | None = None,
) -> Console:
    """Adds /staff to the website; starts the watcher and notifier threads with the app (unless disabled)."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    rasa = rasa or conversation_control(settings)
    console = Console(settings, clock, rasa)
    app[CONSOLE_KEY] = console

    @web.middleware
    async def errors_as_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Raised 401/403/303 become returned responses, so the website's security headers reach them too."""
        if not request.path.startswith(PREFIX):
            return await handler(request)
        try:
            return await handler(request)
        except web.HTTPException as error:
            response = web.Response(status=error.status, body=error.body, headers=error.headers)
            response.headers["Cache-Control"] = "no-store"
            for name, morsel in error.cookies.items():
                response.cookies[name] = morsel
            return response

    app.middlewares.append(errors_as_responses)

    async def to_queue(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"{PREFIX}/")

    routes = app.router
    routes.add_get(PREFIX, to_queue)
    routes.add_get(f"{PREFIX}/", console.get_queue)
    routes.add_get(f"{PREFIX}/login", console.get_login)
    routes.add_post(f"{PREFIX}/login", console.post_login)
    routes.add_post(f"{PREFIX}/logout", console.post_logout)
    routes.add_get(f"{PREFIX}/api/queue", console.api_queue)
    routes.add_get(f"{PREFIX}/api/tickets/{{ticket_id:\\d+}}/transcript", console.api_transcript)
    routes.add_get(f"{PREFIX}/tickets/{{ticket_id:\\d+}}", console.get_ticket)
    routes.add_post(f"{PREFIX}/tickets/{{ticket_id:\\d+}}/claim", console.post_claim)
    routes.add_post(f"{PREFIX}/tickets/{{ticket_id:\\d+}}/reply", console.post_reply)
    routes.add_post(f"{PREFIX}/tickets/{{ticket_id:\\d+}}/hand-back", console.post_hand_back)
    routes.add_post(f"{PREFIX}/tickets/{{ticket_id:\\d+}}/close", console.post_close)
    routes.add_get(f"{PREFIX}/admin/staff", console.get_staff_admin)
    routes.add_post(f"{PREFIX}/admin/staff", console.post_staff_create)
    routes.add_post(f"{PREFIX}/admin/staff/{{staff_id:\\d+}}/active", console.post_staff_active)
    routes.add_get(f"{PREFIX}/admin/audit", console.get_audit)
    routes.add_static(f"{PREFIX}/static/", HERE / "static")

    if settings.run_workers if start_workers is None else start_workers:
        workers = BackgroundWorkers(settings, clock, rasa)

        async def start(_: web.Application) -> None:
            workers.start()

        async def stop(_: web.Application) -> None:
            await asyncio.to_thread(workers.stop)

        app.on_startup.append(start)  # type: ignore[arg-type]
        app.on_cleanup.append(stop)  # type: ignore[arg-type]
    return console

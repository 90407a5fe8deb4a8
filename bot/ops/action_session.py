"""Custom action calls share one HTTP session (keep-alive connections) per action endpoint (rasa_main, 19.).

Rasa's EndpointConfig.request opens a new aiohttp ClientSession, and with it a new TCP connection, for
every custom action call and closes both afterwards (0.3-0.6 ms of CPU per call here). Here each
RemoteAction gets a copy of its endpoint (same url, headers, auth, params, token, cafile) whose `request`
is Rasa's with one change: the session is created once per endpoint and event loop, on first use, and
kept, so calls reuse idle connections. Everything a call sees is as before:

- the timeout is the one the caller passes (RemoteAction passes DEFAULT_REQUEST_TIMEOUT, read at call
  time, so rasa_main's apply_action_timeout still applies); without one, Rasa's session default
  (rasa.utils.endpoints.DEFAULT_REQUEST_TIMEOUT, also read at call time);
- the same request headers, session headers and basic auth, query parameters, compression and TLS
  context; no cookies are kept between calls (Rasa's fresh sessions had none); no limit on concurrent
  connections (each of Rasa's sessions had its own connection);
- the same answers and errors: status >= 400 raises Rasa's ClientResponseError, a non-JSON answer is
  None, a refused connection or a timeout raises what aiohttp raised before, so RemoteAction.run maps it
  to the same Rasa exception and bot/ops/action_failures.py answers utter_action_failed.

Idle connections. The action server (rasa_sdk, i.e. Sanic 21.12) keeps an idle connection open for
KEEP_ALIVE_TIMEOUT = 5 s and then closes it; a restarted action server closes all of them. An idle
connection is reused only within KEEPALIVE_SECONDS (below Sanic's 5 s, so we drop it first), and aiohttp
discards a connection the server has closed. Should a call still meet a connection that the server closed
at that very moment (it disconnects without any answer), the call is sent once more, on a new connection,
within what is left of its timeout; only a reused connection is retried, so a call on a new connection
fails exactly as in Rasa (a down server: connection refused).
The sessions are closed when the Rasa server stops.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from types import SimpleNamespace
from typing import Any, Dict, Tuple

import aiohttp
from aiohttp.client_exceptions import ContentTypeError

KEEPALIVE_SECONDS = 3.0
RETRIED_ERRORS = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
_ABSENT: Any = object()


async def _mark_reused(_session: Any, context: SimpleNamespace, _params: Any) -> None:
    state = getattr(context, "trace_request_ctx", None)
    if isinstance(state, SimpleNamespace):
        state.reused = True


def _remaining(timeout: Any, started: float, now: float) -> Any:
    """The same timeout with its total cut by the time already spent (None total: no deadline)."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        if timeout.total is None:
            return timeout
        return aiohttp.ClientTimeout(
            total=timeout.total - (now - started),
            connect=timeout.connect,
            sock_read=timeout.sock_read,
            sock_connect=timeout.sock_connect,
            ceil_threshold=timeout.ceil_threshold,
        )
    if timeout is None:
        return None
    return float(timeout) - (now - started)


def _total(timeout: Any) -> float | None:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout.total
    return None if timeout is None else float(timeout)


def _pooled_class() -> type:
    import rasa.utils.endpoints as endpoints
    from rasa.shared.exceptions import FileNotFoundException

    class PooledEndpointConfig(endpoints.EndpointConfig):
        """An EndpointConfig whose requests share one aiohttp session per event loop."""

        _sessions: Dict[asyncio.AbstractEventLoop, aiohttp.ClientSession]

        def pooled_session(self) -> aiohttp.ClientSession:
            loop = asyncio.get_running_loop()
            session = self._sessions.get(loop)
            if session is None or session.closed:
                for old_loop in [known for known in self._sessions if known.is_closed()]:
                    del self._sessions[old_loop]
                auth = None
                if self.basic_auth:
                    auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                trace = aiohttp.TraceConfig()
                trace.on_connection_reuseconn.append(_mark_reused)  # type: ignore[arg-type]
                session = aiohttp.ClientSession(
                    headers=self.headers,
                    auth=auth,
                    connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS),
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trace_configs=[trace],
                )
                self._sessions[loop] = session
            return session

        async def close_sessions(self) -> None:
            """Closes the session of the running loop (the others' loops are gone or not ours to use)."""
            session = self._sessions.pop(asyncio.get_running_loop(), None)
            if session is not None:
                await session.close()

        async def request(
            self,
            method: str = "post",
            subpath: str | None = None,
            content_type: str | None = "application/json",
            compress: bool = False,
            **kwargs: Any,
        ) -> Any | None:
            # From here to `sslcontext` exactly as Rasa's EndpointConfig.request.
            headers = {}
            if content_type:
                headers["Content-Type"] = content_type
            if "headers" in kwargs:
                headers.update(kwargs["headers"])
                del kwargs["headers"]
            if self.headers:
                headers.update(self.headers)
            url = endpoints.concat_url(self.url, subpath)
            sslcontext = None
            if self.cafile:
                try:
                    sslcontext = ssl.create_default_context(cafile=self.cafile)
                except FileNotFoundError as e:
                    raise FileNotFoundException(
                        f"Failed to find certificate file, '{os.path.abspath(self.cafile)}' does not exist."
                    ) from e
            params = self.combine_parameters(kwargs)
            timeout = kwargs.pop("timeout", _ABSENT)
            if timeout is _ABSENT:  # Rasa's session default, read now as Rasa reads it for each session
                timeout = aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT)
            traced = "trace_request_ctx" not in kwargs  # a caller's own trace context: no retry

            async def send(session: aiohttp.ClientSession, attempt_timeout: Any, state: Any) -> Any:
                extra = dict(kwargs, trace_request_ctx=state) if state is not None else kwargs
                async with session.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    compress=compress,
                    ssl=sslcontext,
                    timeout=attempt_timeout,
                    **extra,
                ) as response:
                    if state is not None:
                        state.answered = True
                    if response.status >= 400:
                        raise endpoints.ClientResponseError(
                            response.status, response.reason, await response.content.read()
                        )
                    try:
                        return await response.json()
                    except ContentTypeError:
                        return None

            loop = asyncio.get_running_loop()
            started = loop.time()
            state = SimpleNamespace(reused=False, answered=False) if traced else None
            try:
                return await send(self.pooled_session(), timeout, state)
            except RETRIED_ERRORS:
                total = _total(timeout)
                if state is None or not state.reused or state.answered:
                    raise
                if total is not None and loop.time() - started >= total:
                    raise
            # The reused connection had been closed by the server: once more on a new connection of a
            # session of its own, as Rasa sends every call (other idle connections may be stale too).
            async with self.session() as fresh:
                return await send(fresh, _remaining(timeout, started, loop.time()), None)

    return PooledEndpointConfig


_CLASS: list = []
_POOLED: Dict[int, Tuple[Any, Any]] = {}


def pooled_class() -> type:
    if not _CLASS:
        _CLASS.append(_pooled_class())
    return _CLASS[0]


def pooled(endpoint: Any) -> Any:
    """The pooled copy of a plain EndpointConfig (one per endpoint object); anything else as it is."""
    from rasa.utils.endpoints import EndpointConfig

    if type(endpoint) is not EndpointConfig:
        return endpoint
    known = _POOLED.get(id(endpoint))
    if known is None or known[0] is not endpoint:
        cls: Any = pooled_class()
        copy = cls.__new__(cls)
        copy.__dict__.update(endpoint.__dict__)
        copy._sessions = {}
        known = _POOLED[id(endpoint)] = (endpoint, copy)
    return known[1]


async def close_pooled_sessions() -> None:
    for _endpoint, copy in list(_POOLED.values()):
        await copy.close_sessions()


def share_action_connections() -> None:
    import rasa.core.run
    from rasa.core.actions.action import RemoteAction

    rasa_init = RemoteAction.__init__
    if getattr(rasa_init, "pooled", False):
        return

    def __init__(self: RemoteAction, name: str, action_endpoint: Any) -> None:
        rasa_init(self, name, pooled(action_endpoint))

    __init__.pooled = True  # type: ignore[attr-defined]
    RemoteAction.__init__ = __init__

    rasa_close_resources = rasa.core.run.close_resources

    async def close_resources(app: Any, loop: Any) -> None:
        try:
            await rasa_close_resources(app, loop)
        finally:
            await close_pooled_sessions()

    rasa.core.run.close_resources = close_resources

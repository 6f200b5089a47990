"""``Emulator``: the aiohttp application, WebSocket routing and lifecycle."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Final

from aiohttp import web

from wyoming_60db.sixtydb.vocabulary import CloseCode

from .auth import Credentials, ws_credentials
from .connection import Connection, ConnectionGone, ErrorFrameBuilder
from .frames import Frame, now_ms, stt_error_frame, tts_error_frame
from .recorder import Stats, SttRecord, TtsConnectionRecord, TtsRecord, WsRecord
from .rest import RATE_KEY, STATE_KEY, RateWindow, add_rest_routes, health
from .settings import EmulatorSettings, Fault
from .state import EmulatorState
from .stt import SttSession
from .tts import TtsSession

_LOGGER = logging.getLogger(__name__)

HEARTBEAT_SECONDS: Final = 30.0  # §2.1: server pings every 30 s …
PONG_TIMEOUT_SECONDS: Final = 10.0  # … and waits 10 s for the pong
MAX_MESSAGE_BYTES: Final = 10 * 1024 * 1024  # undocumented; 3P clients use 10 MB (§2.7)
_SHUTDOWN_TIMEOUT: Final = 2.0

SessionRunner = Callable[[Connection, Credentials], Awaitable[None]]


def _new_ws() -> web.WebSocketResponse:
    # autoclose=False: Connection answers a client's close itself (after close_delay).
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE_BYTES, autoclose=False
    )
    # aiohttp waits heartbeat/2 for the pong; the docs say 10 s (§2.1). The
    # attribute is private, so only adjust it where this aiohttp has it.
    if hasattr(ws, "_pong_heartbeat"):
        ws._pong_heartbeat = PONG_TIMEOUT_SECONDS
    return ws


async def _serve_ws(
    request: web.Request,
    service: str,
    record: WsRecord,
    error_frame: ErrorFrameBuilder,
    run: SessionRunner,
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    ws = _new_ws()
    await ws.prepare(request)
    conn = Connection(
        ws, request, service=service, state=state, record=record, error_frame=error_frame
    )
    try:
        await conn.start()
        await run(conn, ws_credentials(request.query, state.settings))
    except ConnectionGone as exc:
        _LOGGER.debug("%s connection gone: %s", service, exc)
        record.ended = record.ended or "client_closed"
    finally:
        await conn.finish()
    return ws


async def stt_handler(request: web.Request) -> web.StreamResponse:
    if not web.WebSocketResponse().can_prepare(request).ok:
        return await health(request)  # §2.1: plain GET on the WS port → 200 ok
    state = request.app[STATE_KEY]
    state.stats.ws_connections[request.path] += 1
    creds = ws_credentials(request.query, state.settings)
    record = SttRecord(path=request.path, auth_method=creds.method)
    state.stt_sessions.append(record)

    async def run(conn: Connection, creds: Credentials) -> None:
        await SttSession(conn, record, creds).run()

    return await _serve_ws(request, "stt", record, stt_error_frame, run)


async def tts_handler(request: web.Request) -> web.StreamResponse:
    if not web.WebSocketResponse().can_prepare(request).ok:
        return await health(request)
    state = request.app[STATE_KEY]
    state.stats.ws_connections[request.path] += 1
    creds = ws_credentials(request.query, state.settings)
    record = TtsConnectionRecord(path=request.path, auth_method=creds.method)
    index = len(state.tts_connections)
    state.tts_connections.append(record)

    def error_frame(message: str, code: str | None, details: dict[str, object] | None) -> Frame:
        return tts_error_frame(state.settings.tts_error_style, message, code, details)

    async def run(conn: Connection, creds: Credentials) -> None:
        await TtsSession(conn, record, index, creds).run()

    return await _serve_ws(request, "tts", record, error_frame, run)


async def ws_health_handler(request: web.Request) -> web.StreamResponse:
    """§4 GUESS: upgrade → ``{"status":"ok","timestamp":…}`` then close 1000."""
    ws = web.WebSocketResponse()
    if not ws.can_prepare(request).ok:
        return await health(request)
    request.app[STATE_KEY].stats.ws_connections[request.path] += 1
    await ws.prepare(request)
    await ws.send_str(json.dumps({"status": "ok", "timestamp": now_ms()}))
    await ws.close(code=CloseCode.NORMAL)
    return ws


def build_app(state: EmulatorState) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state
    app[RATE_KEY] = RateWindow()
    add_rest_routes(app)
    app.router.add_get("/ws/stt", stt_handler)
    app.router.add_get("/v1/stream", stt_handler)  # documented alias (§1.1)
    app.router.add_get("/ws/tts", tts_handler)
    app.router.add_get("/ws/health", ws_health_handler)
    return app


class Emulator:
    """A local 60db server on loopback (WebSocket + HTTP on one port)."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self._state = EmulatorState(settings or EmulatorSettings())
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        self._state.stopping = asyncio.Event()
        runner = web.AppRunner(
            build_app(self._state),
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            handle_signals=False,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.host = host
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every open socket (1001) and stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._state.stopping.set()
        connections = list(self._state.connections)
        await asyncio.gather(*(c.shutdown() for c in connections), return_exceptions=True)
        await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start(self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stt_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/stt"

    @property
    def tts_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/tts"

    # ------------------------------------------------------------------ control

    @property
    def settings(self) -> EmulatorSettings:
        return self._state.settings

    @settings.setter
    def settings(self, value: EmulatorSettings) -> None:
        self._state.settings = value

    def inject_fault(self, fault: Fault) -> None:
        """Arm ``fault`` for the next ``fault.times`` connections of ``fault.service``."""
        self._state.arm_fault(fault)

    def clear_faults(self) -> None:
        """Disarm every pending fault (e.g. one armed with ``times=None``)."""
        self._state.faults.clear()

    def script_transcripts(self, texts: Iterable[str]) -> None:
        """Texts for the next voiced utterances that do not decode as tone code."""
        self._state.scripted.extend(texts)

    # ------------------------------------------------------------------ records

    @property
    def stt_sessions(self) -> list[SttRecord]:
        return self._state.stt_sessions

    @property
    def tts_contexts(self) -> list[TtsRecord]:
        return self._state.tts_contexts

    @property
    def tts_connections(self) -> list[TtsConnectionRecord]:
        return self._state.tts_connections

    @property
    def stats(self) -> Stats:
        return self._state.stats

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults with firings left, oldest first."""
        return [armed.fault for armed in self._state.faults]

    @property
    def open_connections(self) -> int:
        """WebSockets currently open, for tests that check nothing was leaked."""
        return len(self._state.connections)

    @property
    def open_connections_by_service(self) -> dict[str, int]:
        """``{"stt": n, "tts": m}``: STT/TTS WebSockets currently open (until fully closed)."""
        counts = {"stt": 0, "tts": 0}
        for conn in self._state.connections:
            counts[conn.service] += 1
        return counts

    def drop_connections(self, service: str) -> int:
        """Cut every open ``service`` socket without a close frame; returns how many.

        What a restart of 60db, or a NAT box that forgot an idle connection,
        looks like to a client.
        """
        dropped = [conn for conn in self._state.connections if conn.service == service]
        for conn in dropped:
            conn.abort()
        return len(dropped)

    def active_slots(self, service: str, identity: str | None = None) -> int:
        """Concurrency slots of ``service`` held now (what the §6 limit is checked against).

        ``identity`` is ``"key:<apiKey>"`` or ``"token:<jwt>"``; None sums every credential.
        """
        if identity is None:
            return self._state.limiter.total(service)
        return self._state.limiter.active(service, identity)

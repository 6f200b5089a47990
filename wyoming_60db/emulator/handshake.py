"""The common WebSocket opening: connecting → (auth) → connection_established (§1.4, §2.2, §3.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from wyoming_60db.sixtydb.vocabulary import CloseCode

from .auth import Credentials
from .connection import Connection
from .frames import connecting_frame, established_frame
from .settings import EmulatorSettings

CONCURRENCY_ERRORS: Final = {
    "stt": ("Too many concurrent STT sessions", "STT_CONCURRENCY_LIMIT"),
    "tts": ("Too many concurrent TTS contexts", "TTS_CONCURRENCY_LIMIT"),
}


def concurrency_limit(settings: EmulatorSettings, service: str) -> int:
    return settings.stt_concurrency if service == "stt" else settings.tts_concurrency


async def run_handshake(
    conn: Connection,
    creds: Credentials,
    before_established: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Send the opening frames; False when the socket was rejected (and closed)."""
    settings = conn.settings
    await conn.send(connecting_frame(settings.handshake))
    # connect_latency emulates the time "Authenticating..." takes; frames the
    # client sends meanwhile are early (§1.4).
    await conn.wait_handshake(settings.connect_latency)
    if not creds.ok:
        # GUESS (§1.4, §8.1): invalid-key behaviour is undocumented.
        conn.state.stats.rejected_auth += 1
        await conn.reject("Invalid API key", "INVALID_API_KEY", CloseCode.POLICY_VIOLATION)
        return False
    if settings.credit_balance <= 0:
        # DOC: close 1008 INSUFFICIENT_CREDITS; GUESS: the error frame before it.
        await conn.reject(
            "Insufficient credits",
            "INSUFFICIENT_CREDITS",
            CloseCode.POLICY_VIOLATION,
            frame=settings.credits_error_frame,
        )
        return False
    if settings.concurrency_counts == "connections":
        # GUESS (§6): the limit counts authenticated sockets; checked here, held
        # until the socket closes (Connection.finish releases it).
        limit = concurrency_limit(settings, conn.service)
        if not conn.take_connection_slot(creds.identity, limit):
            message, code = CONCURRENCY_ERRORS[conn.service]
            await conn.reject(message, code, CloseCode.POLICY_VIOLATION, {"limit": limit})
            return False
    if before_established is not None:
        await before_established()
    conn.established = True
    await conn.send(established_frame(settings.handshake, conn.service, settings))
    conn.state.stats.handshakes_completed[conn.service] += 1
    return True

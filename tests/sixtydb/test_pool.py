"""Warm connections over quiet spells, and concurrency slots that always come back.

A home is idle most of the day and busy for a moment: these tests compress a
day with a short ``warm_max_idle``, and hang up the way Home Assistant does
(the moment the transcript is there, while the 60db socket is still closing).
"""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from tests.conftest import FAST_TIMEOUTS, eventually, make_client
from wyoming_60db.emulator import Emulator, tonecode
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    ConcurrencyLimitError,
    SixtyDbClient,
    SttOptions,
    SttResult,
    TtsOptions,
)

WAIT = 10.0
MAX_IDLE = 0.3  # the warm-connection recycle age, compressed from 240 s
# Bursts queue behind sockets still closing: give them the server's queue time.
TIMEOUTS = dataclasses.replace(FAST_TIMEOUTS, warm_max_idle=MAX_IDLE, queue=3.0)
PHRASE = "lights on"


def speech(text: str = PHRASE) -> bytes:
    pad = np.zeros(1600, dtype=np.int16)
    return np.concatenate([pad, tonecode.encode(text, 16000), pad]).astype("<i2").tobytes()


async def transcribe(client: SixtyDbClient, audio: bytes | None = None) -> SttResult:
    async with asyncio.timeout(WAIT), client.stt_session(SttOptions(languages=["en"])) as session:
        await session.send_audio(audio or speech())
        return await session.stop()


async def transcribe_and_hang_up(client: SixtyDbClient) -> str:
    """Home Assistant's order: the request is cancelled the moment it has its text.

    The cancellation lands while the session is closing its 60db socket
    (the emulator delays its side of the close, like a network round trip).
    """
    heard: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def request() -> None:
        async with client.stt_session(SttOptions(languages=["en"])) as session:
            await session.send_audio(speech())
            heard.set_result((await session.stop()).text)
        # __aexit__ → aclose() runs here; the caller cancels us during it.

    task = asyncio.create_task(request())
    async with asyncio.timeout(WAIT):
        text = await heard
    await asyncio.sleep(0.02)  # inside aclose(), awaiting the delayed close
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return text


def warm_client(emulator: Emulator, **overrides: object) -> SixtyDbClient:
    fields: dict[str, object] = {"timeouts": TIMEOUTS}
    fields.update(overrides)
    return make_client(emulator, **fields)


# --------------------------------------------------------------------------- slots


@pytest.mark.parametrize("counts", ["sessions", "connections"])
async def test_hanging_up_mid_close_gives_every_slot_back(emulator: Emulator, counts: str) -> None:
    """30 requests in HA's order, then 5 bursts of 8: no slot is lost, 8 run at once after."""
    emulator.settings.close_delay = 0.15
    emulator.settings.concurrency_counts = counts  # type: ignore[assignment]
    async with warm_client(emulator) as client:
        client.prewarm()
        for _ in range(30):
            assert await transcribe_and_hang_up(client) == PHRASE
        for _ in range(5):
            burst = [transcribe_and_hang_up(client) for _ in range(8)]
            assert await asyncio.gather(*burst) == [PHRASE] * 8
        await eventually(lambda: client.free_slots("stt") == 8, "all 8 STT slots free")
        assert client.free_slots("tts") == 5
        # 60db agrees: nothing is still counted against the account.
        await eventually(lambda: emulator.active_slots("stt") <= 1, "60db released the sessions")
        results = await asyncio.gather(*(transcribe(client) for _ in range(8)))
        assert [result.text for result in results] == [PHRASE] * 8


async def test_a_slot_is_held_until_its_socket_has_closed(emulator: Emulator) -> None:
    """If 60db counts sockets, a slot freed before the close would let a ninth one in."""
    emulator.settings.close_delay = 0.3
    async with make_client(emulator, timeouts=TIMEOUTS) as client:
        task = asyncio.create_task(transcribe_and_hang_up(client))
        await asyncio.wait_for(task, WAIT)
        assert client.free_slots("stt") == 7  # cancelled, but its socket is still closing
        await eventually(lambda: client.free_slots("stt") == 8, "the slot back after the close")


async def test_tts_slot_comes_back_when_the_reader_is_cancelled(emulator: Emulator) -> None:
    emulator.settings.close_delay = 0.15
    emulator.settings.chunk_gap = 0.05
    options = TtsOptions(voice_id=DEFAULT_VOICE_ID)
    async with warm_client(emulator) as client:

        async def listen_to_one_chunk() -> None:
            async for _ in client.synthesize("A long answer. " * 5, options):
                await asyncio.sleep(1)  # cancelled here, mid-answer

        for _ in range(10):
            task = asyncio.create_task(listen_to_one_chunk())
            await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await eventually(lambda: client.free_slots("tts") == 5, "all 5 TTS slots free")
        audio = await asyncio.gather(
            *(_collect(client.synthesize("Hi.", options)) for _ in range(5))
        )
        assert all(audio)


async def _collect(chunks: object) -> bytes:
    return b"".join([chunk async for chunk in chunks])  # type: ignore[attr-defined]


async def test_warm_sockets_never_push_a_full_burst_over_the_limit(emulator: Emulator) -> None:
    """60db counting sockets: warm connections plus 8 sessions would be 9."""
    emulator.settings.concurrency_counts = "connections"
    emulator.settings.connect_latency = 0.05
    async with warm_client(emulator, timeouts=FAST_TIMEOUTS) as client:
        client.prewarm()
        await eventually(lambda: client._stt_pool.idle_count == 1, "a warm STT connection")
        for _ in range(5):
            results = await asyncio.gather(*(transcribe(client) for _ in range(8)))
            assert [result.text for result in results] == [PHRASE] * 8
            assert emulator.open_connections_by_service["stt"] <= 8


# --------------------------------------------------------------------------- warm pool


async def test_warm_connections_are_recycled_in_the_background(emulator: Emulator) -> None:
    """Connections older than warm_max_idle are replaced on a timer, with no request."""
    async with warm_client(emulator) as client:
        client.prewarm()
        await eventually(lambda: client._stt_pool.idle_count == 1, "a warm STT connection")
        await asyncio.sleep(4 * MAX_IDLE)
        assert emulator.stats.handshakes_completed["stt"] >= 3, "recycled at least twice"
        assert emulator.stats.handshakes_completed["tts"] >= 3
        await eventually(
            lambda: emulator.open_connections_by_service == {"stt": 1, "tts": 1},
            "old connections closed, one of each kept",
        )


async def test_renewal_is_make_before_break(emulator: Emulator) -> None:
    """A connection due for renewal serves until its replacement has logged in: no gap."""
    emulator.settings.connect_latency = 0.2  # two thirds of the recycle age
    async with warm_client(emulator) as client:
        client.prewarm()
        await eventually(lambda: client._stt_pool.idle_count == 1, "a warm STT connection")
        gaps, most_open = 0, 0
        for _ in range(200):  # 2 s: about six renewals
            gaps += client._stt_pool.idle_count == 0
            most_open = max(most_open, emulator.open_connections_by_service["stt"])
            await asyncio.sleep(0.01)
        assert gaps == 0, "a request would have met a renewal gap"
        assert emulator.stats.handshakes_completed["stt"] >= 4
        assert most_open <= 2  # the old one and its replacement, briefly


async def test_first_request_after_a_quiet_spell_skips_the_login(emulator: Emulator) -> None:
    """After an idle gap of several recycle ages, the request still finds a warm socket."""
    emulator.settings.connect_latency = 1.0  # a login this slow would be obvious
    async with warm_client(emulator) as client:
        client.prewarm()
        await eventually(lambda: client._stt_pool.idle_count == 1, "a warm STT connection")
        await asyncio.sleep(MAX_IDLE)  # one recycle is under way or done …
        await eventually(lambda: client._stt_pool.idle_count == 1, "warm again")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await transcribe(client)).text == PHRASE
        assert loop.time() - started < 0.5, "the request paid for a login"


async def test_a_dropped_warm_connection_is_replaced_without_a_request(
    emulator: Emulator,
) -> None:
    """60db (or a NAT box) drops the idle socket: a new one is opened before anyone asks."""
    async with warm_client(emulator, timeouts=FAST_TIMEOUTS) as client:
        client.prewarm()
        await eventually(lambda: client._stt_pool.idle_count == 1, "a warm STT connection")
        assert emulator.drop_connections("stt") == 1
        await eventually(
            lambda: (
                emulator.stats.handshakes_completed["stt"] == 2
                and client._stt_pool.idle_count == 1
                and emulator.open_connections_by_service["stt"] == 1
            ),
            "a new warm connection in place of the dropped one",
        )


async def test_failed_warm_ups_back_off_then_recover(emulator: Emulator) -> None:
    """60db down: retries slow down (no connection storm) and resume when it is back."""
    emulator.settings.api_key = "sk_live_someone_else"  # every login fails
    async with warm_client(emulator, timeouts=FAST_TIMEOUTS) as client:
        client.prewarm()
        await asyncio.sleep(2.5)  # backoff 1 s, then 2 s: at most 2 tries each
        attempts = emulator.stats.ws_connections["/ws/stt"]
        assert 1 <= attempts <= 3, attempts
        emulator.settings.api_key = None
        await eventually(lambda: client._stt_pool.idle_count == 1, "warm again", timeout=8)


async def test_a_request_waits_for_the_warm_up_under_way(emulator: Emulator) -> None:
    """Rather than open a second socket, a request takes the one about to be ready."""
    emulator.settings.connect_latency = 0.3
    async with warm_client(emulator, timeouts=FAST_TIMEOUTS) as client:
        client.prewarm()
        await asyncio.sleep(0.05)  # the warm-up is half-way through its login
        assert (await transcribe(client)).text == PHRASE
        used = [record for record in emulator.stt_sessions if record.start is not None]
        assert used == emulator.stt_sessions[:1], "the request opened its own socket"


async def test_a_refusal_while_holding_a_slot_is_tried_once_more(emulator: Emulator) -> None:
    """60db's count lags: the socket another client is closing still counts for a moment."""
    emulator.settings.concurrency_counts = "connections"
    emulator.settings.stt_concurrency = 1  # a plan with one session; our client assumes 8
    async with (
        make_client(emulator, timeouts=TIMEOUTS) as other,
        make_client(emulator, timeouts=TIMEOUTS) as client,
    ):
        held = other.stt_session(SttOptions(languages=["en"]))
        held.start()
        await eventually(lambda: emulator.active_slots("stt") == 1, "the other client's socket")
        request = asyncio.create_task(transcribe(client))
        await eventually(lambda: emulator.stats.ws_connections["/ws/stt"] >= 2, "a refusal")
        await held.aclose()  # gone well within the retry pause
        assert (await request).text == PHRASE
        # the other's, ours refused, ours accepted (and warm-ups of either pool)
        assert emulator.stats.ws_connections["/ws/stt"] >= 3


async def test_a_refusal_that_persists_is_reported(emulator: Emulator) -> None:
    emulator.settings.concurrency_counts = "connections"
    emulator.settings.stt_concurrency = 1
    async with (
        make_client(emulator, timeouts=TIMEOUTS) as other,
        make_client(emulator, timeouts=TIMEOUTS) as client,
    ):
        async with other.stt_session(SttOptions(languages=["en"])) as held:
            held.start()
            await eventually(lambda: emulator.active_slots("stt") == 1, "the other's socket")
            with pytest.raises(ConcurrencyLimitError):
                await transcribe(client)
        assert client.free_slots("stt") == 8

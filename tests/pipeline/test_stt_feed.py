"""SttFeed: client audio through one 60db session, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.conftest import eventually, make_client
from wyoming_60db.audio import mulaw_encode
from wyoming_60db.emulator import Emulator, Fault, SttRecord, tonecode
from wyoming_60db.pcm import PcmFormat
from wyoming_60db.pipeline.stt_feed import MAX_UNSENT_SECONDS, MAX_UTTERANCE_SECONDS, SttFeed
from wyoming_60db.sixtydb import (
    ConnectionLostError,
    SixtyDbClient,
    SixtyDbError,
    SixtyDbTimeoutError,
    SttOptions,
    SttResult,
)
from wyoming_60db.sixtydb.limits import STT_FRAME_MS

PHRASE = "turn on the kitchen lights"
CHUNK_MS = 10  # what Home Assistant sends
FRAME_BYTES = 16000 * STT_FRAME_MS // 1000 * 2  # 1,920: 60 ms of 16 kHz 16-bit mono


def speech(text: str, rate: int = 16000, before: float = 0.3, after: float = 0.3) -> bytes:
    """Tone-coded "speech" the emulator transcribes back, padded with silence."""
    silence = np.zeros(int(rate * before)), np.zeros(int(rate * after))
    return (
        np.concatenate([silence[0], tonecode.encode(text, rate), silence[1]])
        .astype("<i2")
        .tobytes()
    )


def ten_ms_chunks(audio: bytes, source: PcmFormat) -> list[bytes]:
    size = source.rate * CHUNK_MS // 1000 * source.frame_bytes
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def used_session(emulator: Emulator) -> SttRecord:
    """The session that got a ``start`` (the pool keeps another one warm)."""
    (record,) = [record for record in emulator.stt_sessions if record.start is not None]
    return record


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[SixtyDbClient]:
    async with make_client(emulator) as sixtydb:
        yield sixtydb


async def open_feed(
    client: SixtyDbClient, source: PcmFormat | None, options: SttOptions | None = None
) -> SttFeed:
    return SttFeed(client, options or SttOptions(), source, keep_updates=True)


async def transcribe(
    client: SixtyDbClient, audio: bytes, source: PcmFormat, options: SttOptions | None = None
) -> SttResult:
    """Push ``audio`` in 10 ms chunks at about real time (loopback is faster), then finish."""
    feed = await open_feed(client, source, options)
    try:
        async with asyncio.timeout(20):
            for chunk in ten_ms_chunks(audio, source):
                feed.push(chunk)
                await asyncio.sleep(0)
            return await feed.finish()
    finally:
        await feed.aclose()


async def test_ha_audio_passes_through_in_60_ms_frames(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """16 kHz 16-bit mono: exactly the input bytes reach 60db, 60 ms per frame, not 10."""
    audio = speech(PHRASE)
    result = await transcribe(client, audio, PcmFormat(16000, 2, 1))
    assert result.text == PHRASE
    record = used_session(emulator)
    assert bytes(record.audio) == audio
    assert record.json_frames == -(-len(audio) // FRAME_BYTES)  # ~17 frames/s, not 100


def test_passthrough_imports_no_numpy() -> None:
    """The 16 kHz path needs neither numpy nor soxr (about 15 MiB resident each time)."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from wyoming_60db.pcm import PcmFormat
        from wyoming_60db.pipeline.stt_feed import SttFeed
        from wyoming_60db.sixtydb import SttOptions, SttResult

        class Session:  # the calls SttFeed makes of an SttSession
            sent = []
            def start(self): pass
            async def send_audio(self, audio): self.sent.append(audio)
            async def transcripts(self):
                return
                yield
            async def stop(self): return SttResult("", None, None)
            async def aclose(self): pass

        class Client:
            def stt_session(self, options): return session

        async def main():
            global session
            session = Session()
            feed = SttFeed(Client(), SttOptions(), PcmFormat(16000, 2, 1))
            audio = bytes(range(256)) * 50
            for start in range(0, len(audio), 320):
                feed.push(audio[start : start + 320])
            await feed.finish()
            await feed.aclose()
            assert b"".join(session.sent) == audio, "bytes changed"
            print(sorted(name for name in ("numpy", "soxr") if name in sys.modules))

        asyncio.run(main())
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


async def test_44k_stereo_32_bit_is_converted(client: SixtyDbClient, emulator: Emulator) -> None:
    mono = np.frombuffer(speech(PHRASE, rate=44100), dtype="<i2").astype("<i4") << 16
    stereo = np.repeat(mono, 2).astype("<i4").tobytes()
    result = await transcribe(client, stereo, PcmFormat(44100, 4, 2))
    assert result.text == PHRASE
    sent = len(used_session(emulator).audio)
    expected = len(mono) * 16000 // 44100 * 2  # 16 kHz, 16-bit mono
    assert abs(sent - expected) < FRAME_BYTES


async def test_mulaw_sessions_get_60_ms_mulaw_frames(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    audio = speech(PHRASE)
    options = SttOptions(encoding="mulaw", sample_rate=8000)
    result = await transcribe(client, audio, PcmFormat(16000, 2, 1), options)
    assert result.text == PHRASE
    record = used_session(emulator)
    sizes = [message["binary_frame"] for message in record.received if "binary_frame" in message]
    assert sizes and set(sizes[:-1]) == {480}  # 60 ms of 8 kHz μ-law (§2.3.2)
    assert len(record.audio) == sum(sizes)
    assert record.json_frames == 0


async def test_utterance_audio_is_reset_at_a_canonical_final(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """After 60db's canonical final only its trailing silence is kept (the last 300 ms)."""
    source = PcmFormat(16000, 2, 1)
    feed = await open_feed(client, source, SttOptions(utterance_end_ms=300))
    try:
        first = speech(PHRASE, after=0.6)
        for chunk in ten_ms_chunks(first, source):
            feed.push(chunk)
        assert feed.utterance_audio == first[: len(first) // FRAME_BYTES * FRAME_BYTES]
        await eventually(lambda: feed.heard == PHRASE, "the first phrase's canonical final")
        kept = feed.utterance_audio
        # The end of what was sent, within utterance_end_ms: silence, no word of the phrase.
        assert 0 < len(kept) <= 16000 * 2 * 300 // 1000
        assert kept == first[len(first) // FRAME_BYTES * FRAME_BYTES - len(kept) :]
        assert kept == bytes(len(kept))
        feed.push(bytes(FRAME_BYTES * 2))
        assert feed.utterance_seconds == pytest.approx(len(kept) / 32000 + 2 * STT_FRAME_MS / 1000)
        async with asyncio.timeout(10):
            assert (await feed.finish()).text == PHRASE
    finally:
        await feed.aclose()


async def test_utterance_audio_keeps_only_the_last_30_seconds(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    source = PcmFormat(16000, 2, 1)
    feed = await open_feed(client, source)
    try:
        silence = bytes(320)
        for _ in range(36 * 100):  # 36 s of 10 ms chunks (600 frames), no final
            feed.push(silence)
        marker = np.full(160, 1234, dtype="<i2").tobytes()
        for _ in range(6):  # the newest 60 ms frame is recognisable
            feed.push(marker)
        assert feed.utterance_seconds == MAX_UTTERANCE_SECONDS
        assert len(feed.utterance_audio) == MAX_UTTERANCE_SECONDS * 16000 * 2
        assert feed.utterance_audio.endswith(marker * 6)
        async with asyncio.timeout(10):
            await feed.finish()
    finally:
        await feed.aclose()
    assert len(used_session(emulator).audio) == 36 * 32000 + len(marker) * 6


async def test_a_connection_that_keeps_dropping_surfaces_at_the_next_push(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """60db drops every socket mid-stream: after two recoveries push raises, and
    updates() ends with the error (test_stt_recovery.py has the recoveries)."""
    for _ in range(3):
        emulator.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=3200))
    source = PcmFormat(16000, 2, 1)
    feed = await open_feed(client, source)
    updates_error: list[BaseException] = []

    async def read_updates() -> None:
        try:
            async for _ in feed.updates():
                pass
        except SixtyDbError as err:
            updates_error.append(err)

    reader = asyncio.create_task(read_updates())
    try:
        with pytest.raises(ConnectionLostError):
            async with asyncio.timeout(10):
                for chunk in ten_ms_chunks(speech(PHRASE, after=5.0), source):
                    feed.push(chunk)
                    await asyncio.sleep(0.005)
        with pytest.raises(ConnectionLostError):
            await feed.finish()  # and it stays failed
        async with asyncio.timeout(5):
            await reader
        assert [type(err) for err in updates_error] == [ConnectionLostError]
    finally:
        await feed.aclose()
    await eventually(lambda: client.free_slots("stt") == 8, "the STT slot given back")


async def test_a_stalled_sender_is_bounded() -> None:
    """Audio that cannot go out queues up to MAX_UNSENT_SECONDS, then push raises."""
    stalled = asyncio.Event()

    class StalledSession:
        def start(self) -> None:
            pass

        async def send_audio(self, audio: bytes) -> None:
            stalled.set()
            await asyncio.Event().wait()  # a socket that takes nothing

        async def transcripts(self) -> AsyncIterator[object]:
            await asyncio.Event().wait()
            yield None  # pragma: no cover

        async def aclose(self) -> None:
            pass

    class Client:
        def stt_session(self, options: SttOptions) -> StalledSession:
            return StalledSession()

    feed = SttFeed(Client(), SttOptions(), PcmFormat(16000, 2, 1))  # type: ignore[arg-type]
    try:
        frame = bytes(FRAME_BYTES)
        feed.push(frame)
        await asyncio.wait_for(stalled.wait(), 5)
        with pytest.raises(SixtyDbTimeoutError, match="took no audio"):
            for _ in range(MAX_UNSENT_SECONDS * 1000 // STT_FRAME_MS + 2):
                feed.push(frame)
        with pytest.raises(SixtyDbTimeoutError):
            feed.push(frame)
    finally:
        await feed.aclose()


async def test_aclose_gives_the_slot_back_even_when_cancelled(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    emulator.settings.close_delay = 0.3  # a close handshake as slow as a far network
    source = PcmFormat(16000, 2, 1)
    feed = await open_feed(client, source)
    for chunk in ten_ms_chunks(speech(PHRASE)[:16000], source):
        feed.push(chunk)
    await eventually(lambda: any(record.audio for record in emulator.stt_sessions), "audio at 60db")
    assert client.free_slots("stt") == 7
    closing = asyncio.create_task(feed.aclose())
    await asyncio.sleep(0.05)  # inside the close handshake
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await eventually(lambda: client.free_slots("stt") == 8, "the STT slot given back")
    await eventually(lambda: used_session(emulator).ended is not None, "the 60db session ended")


async def test_push_before_the_format_is_known_is_refused(client: SixtyDbClient) -> None:
    feed = await open_feed(client, None)
    try:
        assert not feed.has_audio_format
        with pytest.raises(RuntimeError):
            feed.push(b"\0\0")
        feed.begin_audio(PcmFormat(8000, 1, 1))
        feed.push(mulaw_encode(bytes(160)))  # any 8-bit bytes: converted, not refused
    finally:
        await feed.aclose()


async def test_updates_are_kept_only_for_a_reader(client: SixtyDbClient) -> None:
    """A feed read only through ``heard`` (the integration) queues no transcriptions."""
    feed = SttFeed(client, SttOptions(), PcmFormat(16000, 2, 1))
    try:
        with pytest.raises(RuntimeError, match="keep_updates"):
            await anext(aiter(feed.updates()))
        feed.push(speech(PHRASE))
        result = await feed.finish()
        assert result.text == feed.heard == PHRASE
    finally:
        await feed.aclose()

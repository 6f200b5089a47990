"""Streaming speech-to-text over ``/ws/stt`` (60db-protocol.md §2)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from . import protocol
from .channel import Channel, Wakeup
from .config import Timeouts
from .errors import (
    ConcurrencyLimitError,
    ConnectionLostError,
    SixtyDbError,
    SixtyDbTimeoutError,
    UnsupportedAudioFormatError,
    UnsupportedLanguageError,
)
from .limits import (
    MAX_STT_LANGUAGES,
    MIN_INTERVAL_MS,
    STT_ENCODINGS,
    STT_MULAW_RATE,
    STT_SAMPLE_RATES,
    SttEncoding,
)
from .pool import LIMIT_RETRY_DELAY
from .protocol import Billing, Transcription
from .vocabulary import ClientMessage, ServerMessage

_LOGGER = logging.getLogger(__name__)

_AUTO: Final = frozenset({"auto", ""})


@dataclass(frozen=True, slots=True)
class SttOptions:
    """How to run one STT session.

    ``languages=None`` asks 60db to detect the language; on the wire that is
    JSON ``null``, never the string ``"auto"`` (§2.3.1), so ``"auto"`` here is
    accepted and translated.
    """

    languages: Sequence[str] | None = None
    encoding: SttEncoding = "linear"
    sample_rate: int = 16000
    interim_results_ms: int | None = None
    utterance_end_ms: int | None = None
    continuous_mode: bool = True
    context: Mapping[str, Any] | None = None
    binary_frames: bool | None = None
    """``None``: μ-law as binary frames ("telephony mode"), linear PCM as JSON
    ``audio`` frames ("browser mode"), the documented pairings (§2.3.2, §2.3.3)."""

    def __post_init__(self) -> None:
        if self.encoding not in STT_ENCODINGS:
            raise UnsupportedAudioFormatError(f"60db STT has no encoding {self.encoding!r}")
        if self.sample_rate not in STT_SAMPLE_RATES:
            raise UnsupportedAudioFormatError(
                f"60db STT does not take {self.sample_rate} Hz audio "
                f"(supported: {', '.join(map(str, sorted(STT_SAMPLE_RATES)))})"
            )
        if self.encoding == "mulaw" and self.sample_rate != STT_MULAW_RATE:
            raise UnsupportedAudioFormatError(f"60db STT takes μ-law only at {STT_MULAW_RATE} Hz")
        languages = self.wire_languages
        if languages is not None and len(languages) > MAX_STT_LANGUAGES:
            raise UnsupportedLanguageError(
                f"60db STT takes at most {MAX_STT_LANGUAGES} languages per session"
            )

    @property
    def wire_languages(self) -> list[str] | None:
        """The ``languages`` field of ``start``: codes, or ``None`` for detection."""
        if self.languages is None:
            return None
        codes = [code.strip().lower() for code in self.languages]
        if not codes or any(code in _AUTO for code in codes):
            return None
        return codes

    @property
    def sends_binary(self) -> bool:
        """Whether audio goes out as binary frames rather than JSON ``audio`` frames."""
        return self.encoding == "mulaw" if self.binary_frames is None else self.binary_frames

    def start_message(self) -> dict[str, Any]:
        """The ``start`` message (§2.3.1)."""
        config: dict[str, Any] = {
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "continuous_mode": self.continuous_mode,
        }
        # §9.5: below 300 ms some servers clamp and others reject; clamping
        # here gives the same session on both.
        if self.interim_results_ms is not None:
            config["interim_results_frequency"] = max(MIN_INTERVAL_MS, self.interim_results_ms)
        if self.utterance_end_ms is not None:
            config["utterance_end_ms"] = max(MIN_INTERVAL_MS, self.utterance_end_ms)
        message: dict[str, Any] = {
            "type": ClientMessage.START,
            "languages": self.wire_languages,
            "config": config,
        }
        if self.context is not None:
            message["context"] = dict(self.context)
        return message


@dataclass(frozen=True, slots=True)
class SttResult:
    """What one session heard."""

    text: str
    language: str | None
    billing: Billing | None
    utterances: tuple[Transcription, ...] = field(default_factory=tuple)


class SttSession:
    """One streaming STT session.

    It starts connecting as soon as it is entered, so 60db's handshake overlaps
    with the user speaking: audio sent before the session is ready is buffered
    and goes out the moment 60db says ``connected`` or ``session_started``,
    whichever comes first (§2.2, §9.1).
    """

    def __init__(
        self,
        open_channel: Callable[[], Awaitable[Channel]],
        options: SttOptions,
        timeouts: Timeouts,
        on_close: Callable[[asyncio.Future[None] | None], None] = lambda _: None,
        on_billing: Callable[[Billing], None] = lambda _: None,
    ) -> None:
        self.options = options
        self._open_channel = open_channel
        self._timeouts = timeouts
        self._on_close = on_close
        self._on_billing = on_billing
        self._channel: Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._pending: list[bytes] = []
        self._error: SixtyDbError | None = None
        self._stop_sent = False
        self._closed = False
        self._accepted = False
        self._utterances: list[Transcription] = []
        self._updates: asyncio.Queue[Transcription | None] = asyncio.Queue()
        self._session_language: str | None = None
        self._billing: Billing | None = None
        self.speech_started = False
        """True once 60db said it hears a voice (``speech_started``, §2.4)."""

    async def __aenter__(self) -> SttSession:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Begin connecting in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def accepted(self) -> bool:
        """True once 60db said the session is ready for audio.

        A failure after that is a dropped session, worth replacing; one before
        it is a failure to connect, already bounded and retried here.
        """
        return self._accepted

    @property
    def error(self) -> SixtyDbError | None:
        """The error that ended the session, if any."""
        return self._error

    async def send_audio(self, audio: bytes) -> None:
        """Stream audio in the session's encoding; buffered until 60db is ready."""
        self._raise_if_failed()
        if not audio:
            return
        async with self._send_lock:
            if not self._ready.is_set():
                self._pending.append(audio)
                return
            await self._flush_pending()
            await self._send_frame(audio)

    async def transcripts(self) -> AsyncIterator[Transcription]:
        """Partial and final results as they arrive; ends with the session."""
        while True:
            update = await self._updates.get()
            if update is None:
                self._updates.put_nowait(None)  # let another reader finish too
                if self._error is not None:
                    raise self._error
                return
            yield update

    async def wait_ready(self) -> None:
        """Until 60db is ready for audio (bounded by ``stt_ready``); raises the session's error.

        A replay into a new session waits for this, so that its audio goes
        out at once and the time the recovery took is known.
        """
        self._raise_if_failed()
        await self._wait(self._ready, self._timeouts.stt_ready, "start the STT session")
        self._raise_if_failed()

    async def stop(self) -> SttResult:
        """Finish the audio and wait (bounded) for the final transcript."""
        await self.wait_ready()
        async with self._send_lock:
            await self._flush_pending()
            if self._channel is not None and not self._stop_sent:
                self._stop_sent = True
                await self._channel.send({"type": ClientMessage.STOP})
        await self._wait(self._done, self._timeouts.stt_finalize, "finish the transcript")
        self._raise_if_failed()
        return self.result()

    def result(self) -> SttResult:
        """The transcript so far: every canonical final, joined in order (§2.5)."""
        finals = [u for u in self._utterances if u.is_canonical]
        text = " ".join(u.text.strip() for u in finals if u.text.strip())
        language = next((u.language for u in reversed(finals) if u.language), None)
        return SttResult(
            text=text,
            language=language or self._session_language or self._requested_language(),
            billing=self._billing,
            utterances=tuple(self._utterances),
        )

    async def aclose(self) -> None:
        """Release the connection and the concurrency slot (idempotent).

        Safe under cancellation, which is the normal case: Home Assistant
        hangs up the moment it has its transcript. The slot is given back by
        the socket's close task, which runs to its end even when this
        coroutine is cancelled half-way.
        """
        if self._closed:
            return
        self._closed = True
        self._updates.put_nowait(None)
        tasks = [task for task in (self._task, self._flush_task) if task is not None]
        for task in tasks:
            task.cancel()
        closing: asyncio.Future[None] | None = None
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if self._channel is not None:
                closing = self._channel.close_soon()
            self._on_close(closing)
        if closing is not None:
            await asyncio.shield(closing)

    async def _run(self) -> None:
        try:
            channel = await self._start_session()
            await self._pump(channel)
        except SixtyDbError as err:
            self._fail(err)
        finally:
            self._ready.set()
            self._done.set()
            self._updates.put_nowait(None)

    async def _start_session(self) -> Channel:
        """Connect, send ``start`` and wait until 60db is ready for audio.

        A refusal for concurrency at this point is retried once: the request
        holds one of our slots, so 60db's count is lagging behind a session
        that just ended. No audio has gone out yet, so nothing is lost.
        """
        for retry in (False, True):
            self._channel = channel = await self._open_channel()
            if channel.connected_early:
                # §9.1: `connected` came during the handshake, so only
                # `session_started` can still tell us the session is ready.
                _LOGGER.debug("60db sent `connected` before the handshake ended")
            await channel.send(self.options.start_message())
            try:
                await self._pump(channel, until_ready=True)
            except ConcurrencyLimitError:
                if retry:
                    raise
                self._channel = None
                await channel.aclose()
                await asyncio.sleep(LIMIT_RETRY_DELAY)
            else:
                return channel
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pump(self, channel: Channel, *, until_ready: bool = False) -> None:
        while not (until_ready and self._ready.is_set()):
            message = await channel.receive(None)
            if message is None:
                if not self._stop_sent:
                    raise ConnectionLostError("60db closed the STT session before it was stopped")
                return
            if isinstance(message, Wakeup):
                continue
            if self._handle(message, channel):
                return

    def _handle(self, message: protocol.JsonObject, channel: Channel) -> bool:
        """Act on one message; True when the session is over."""
        name = protocol.kind(message)
        if name in (ServerMessage.CONNECTED, ServerMessage.SESSION_STARTED):
            if name == ServerMessage.SESSION_STARTED and isinstance(message.get("language"), str):
                self._session_language = message["language"].lower() or None
            self._mark_ready()
        elif name == ServerMessage.TRANSCRIPTION:
            update = protocol.transcription(message)
            self._utterances.append(update)
            self._updates.put_nowait(update)
        elif name == ServerMessage.SPEECH_STARTED:
            self.speech_started = True
        elif name == ServerMessage.SESSION_STOPPED:
            self._billing = protocol.billing(message)
            if self._billing is not None:
                self._on_billing(self._billing)
            return True
        elif name == ServerMessage.ERROR:
            raise channel.scrub(protocol.error(message, service="stt"))
        # language_changed, mode_changed, test_response and any
        # message type this client does not know are informational (§9).
        return False

    def _mark_ready(self) -> None:
        self._accepted = True
        if not self._ready.is_set():
            self._ready.set()
            # Send what was buffered during the handshake now, not at the next chunk.
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_when_idle())

    async def _flush_when_idle(self) -> None:
        try:
            async with self._send_lock:
                await self._flush_pending()
        except SixtyDbError as err:
            self._fail(err)

    async def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for audio in pending:
            await self._send_frame(audio)

    async def _send_frame(self, audio: bytes) -> None:
        if self._channel is None:
            return
        if self.options.sends_binary:
            await self._channel.send_bytes(audio)
            return
        await self._channel.send(
            {
                "type": ClientMessage.AUDIO,
                "audio": base64.b64encode(audio).decode("ascii"),
                "encoding": self.options.encoding,
                "sample_rate": self.options.sample_rate,
            }
        )

    async def _wait(self, event: asyncio.Event, timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: gh-86296 on 3.11
                await event.wait()
        except TimeoutError:
            self._fail(SixtyDbTimeoutError(f"60db did not {what} within {timeout:.0f} s"))

    def _fail(self, error: SixtyDbError) -> None:
        if self._error is None:
            self._error = error
            _LOGGER.debug("60db STT session failed: %s", error)
        self._ready.set()
        self._done.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ConnectionLostError("the STT session is closed")

    def _requested_language(self) -> str | None:
        languages = self.options.wire_languages
        return languages[0] if languages else None

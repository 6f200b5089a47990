"""One Wyoming connection: events in, requests to 60db, events out.

Events of one connection are read one at a time (ha-and-wyoming.md §1), so
every wait on 60db runs as a task and ``describe``/``ping`` stay responsive.
Any failure ends the connection the same way: an ``error`` event, a
half-close, and reading on for a moment before closing, because closing a
socket that still holds unread input sends a TCP reset and the client can lose
the ``error`` in that race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk

from .backend import Backend
from .pcm import PcmFormat
from .sixtydb import SixtyDbClient, SixtyDbError, TtsOptions, Voice
from .stt_stream import SttStream
from .tasks import cancel_and_wait
from .tts_stream import AudioRelay, TtsStream, speak
from .wire import MalformedEvent, RequestError, decode, read_event

_LOGGER = logging.getLogger(__name__)

_READ_SIZE: Final = 64 * 1024


class ClientGone(Exception):
    """The client stopped reading or hung up; nothing more can be sent."""


def handler_factory(
    backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> AsyncEventHandler:
    """A handler for a new connection, or a refusal (``--allow``, shutdown)."""
    peer = writer.get_extra_info("peername")
    if not backend.accepting:
        return RefusedConnection(reader, writer)
    if not backend.settings.allow.permits(peer):
        _LOGGER.warning(
            "Refused a connection from %s: not in the allowed networks (%s); see --allow",
            _peer_text(peer),
            backend.settings.allow,
        )
        return RefusedConnection(reader, writer)
    return SixtyDbEventHandler(backend, reader, writer)


class RefusedConnection(AsyncEventHandler):
    """Closes the connection without reading or answering anything."""

    async def handle_event(self, event: Event) -> bool:
        return False

    async def run(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class SixtyDbEventHandler(AsyncEventHandler):
    """STT and TTS requests of one client connection."""

    def __init__(
        self, backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self._backend = backend
        self._settings = backend.settings
        self._peer = _peer_text(writer.get_extra_info("peername"))
        self._stt: SttStream | None = None
        self._tts_stream: TtsStream | None = None
        self._tts_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._failed = False
        self._gone = False
        self._draining = False
        self._activity = 0
        self.finished = asyncio.Event()
        self._routes: dict[str, Callable[[Event], Awaitable[None]]] = {
            "describe": self._on_describe,
            "ping": self._on_ping,
            "transcribe": self._on_transcribe,
            "audio-start": self._on_audio_start,
            "audio-chunk": self._on_audio_chunk,
            "audio-stop": self._on_audio_stop,
            "synthesize": self._on_synthesize,
            "synthesize-start": self._on_synthesize_start,
            "synthesize-chunk": self._on_synthesize_chunk,
            "synthesize-stop": self._on_synthesize_stop,
        }

    @property
    def busy(self) -> bool:
        """True while a request is in flight (graceful shutdown waits for it)."""
        return self._stt is not None or any(not task.done() for task in self._tasks)

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        """Read events until the client leaves or an error ends the connection."""
        self._backend.connections.add(self)
        try:
            await self._read_events()
            if self._failed and not self._gone:
                self._draining = True
                await self._drain()
        finally:
            try:
                await self.disconnect()
            finally:  # also when shutdown cancels us half-way through the cleanup
                self.writer.close()
                self._backend.connections.discard(self)
                self.finished.set()

    async def _read_events(self) -> None:
        limits = self._settings.limits
        while not (self._failed or self._gone):
            try:
                event = await read_event(self.reader, limits)
            except MalformedEvent as err:
                await self._fail(err)
                return
            if event is None:
                return
            self._activity += 1
            if not await self.handle_event(event):
                return

    async def handle_event(self, event: Event) -> bool:
        """Act on one event; False ends the connection."""
        if self._failed or self._gone:
            return False
        route = self._routes.get(event.type)
        if route is None:
            _LOGGER.debug("Ignoring a %s event", event.type)
            return True
        try:
            await route(event)
        except ClientGone:
            self._gone = True
        except (RequestError, SixtyDbError) as err:
            await self._fail(err)
        except Exception as err:  # our bug (the client's mistakes are decode()'s MalformedEvent)
            _LOGGER.exception("Handling %s from %s failed", event.type, self._peer)
            await self._fail(err)
        return not (self._failed or self._gone)

    async def disconnect(self) -> None:
        """Release every 60db session of this connection."""
        await self._cancel_requests()

    async def _send(self, event: Event) -> None:
        """Write one event, bounded: a client that stops reading is dropped."""
        if self._gone:
            raise ClientGone
        try:
            async with asyncio.timeout(self._settings.write_timeout):
                await async_write_event(event, self.writer)
        except (TimeoutError, ConnectionError, OSError, RuntimeError):
            self._gone = True
            self._abort()
            raise ClientGone from None

    # ------------------------------------------------------------------ failure

    async def _fail(self, error: BaseException) -> None:
        """Send ``error(text, code)`` once, then half-close and let the reader drain."""
        if self._failed or self._gone:
            return
        self._failed = True
        text, code = self._describe_error(error)
        _LOGGER.warning("Request from %s failed (%s): %s", self._peer, code, text)
        await self._cancel_requests()
        try:
            await self._send(Error(text=text, code=code).event())
        except ClientGone:
            return
        if self.writer.can_write_eof():
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.writer.write_eof()
        self._start_task(self._watch_drain(), track=False)

    def _describe_error(self, error: BaseException) -> tuple[str, str]:
        if isinstance(error, RequestError):
            text, code = error.text, error.code
        elif isinstance(error, SixtyDbError):
            text, code = error.message, error.code
        else:
            text, code = "internal server error", "internal_error"
        if self._backend.client is not None:
            text = self._backend.client.config.redact(text)  # belt and braces
        return text, code

    def _on_stream_error(self, error: BaseException) -> None:
        if isinstance(error, ClientGone):
            self._gone = True
            return
        self._start_task(self._fail(error), track=False)

    async def _drain(self) -> None:
        """Read and discard what the client still sends, until it stops or hangs up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.drain_seconds
        while (remaining := deadline - loop.time()) > 0:
            wait = min(self._settings.drain_idle_seconds, remaining)
            try:
                data = await asyncio.wait_for(self.reader.read(_READ_SIZE), wait)
            except (TimeoutError, ConnectionError, OSError):
                return
            if not data:
                return
            self._activity += 1

    async def _watch_drain(self) -> None:
        """Hang up a client that neither sends nor closes after an error.

        The event loop is then waiting inside a read that nothing will end.
        """
        seen = -1
        while not self._draining and self._activity != seen:
            seen = self._activity
            await asyncio.sleep(self._settings.drain_idle_seconds)
        if not self._draining:
            self._abort()

    def _abort(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.close()

    # ------------------------------------------------------------------ tasks

    def _start_task(
        self, coro: Coroutine[Any, Any, None], *, track: bool = True
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        # The loop keeps only weak references: hold every task until it ends.
        tasks = self._tasks if track else self._background
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except ClientGone:
            self._gone = True
        except (RequestError, SixtyDbError) as err:
            await self._fail(err)
        except Exception as err:  # a bug must still answer the client
            _LOGGER.exception("Request from %s failed unexpectedly", self._peer)
            await self._fail(err)

    async def _cancel_requests(self) -> None:
        current = asyncio.current_task()
        stt, self._stt = self._stt, None
        try:
            await cancel_and_wait(task for task in self._tasks if task is not current)
        finally:  # the session (and its slot) is released even if we are cancelled meanwhile
            if stt is not None:
                await stt.aclose()

    def _client(self) -> SixtyDbClient:
        client = self._backend.client
        if client is None:
            raise RequestError(self._backend.unavailable_reason or "no 60db client", "auth_failed")
        return client

    # ------------------------------------------------------------------ info

    async def _on_describe(self, event: Event) -> None:
        await self._send(self._backend.info_event)

    async def _on_ping(self, event: Event) -> None:
        await self._send(Pong(text=decode(Ping.from_event, event).text).event())

    # ------------------------------------------------------------------ STT

    async def _on_transcribe(self, event: Event) -> None:
        transcribe = decode(Transcribe.from_event, event)
        language = transcribe.language
        if language is not None and not isinstance(language, str):
            raise MalformedEvent("transcribe: language is not a string")
        await self._open_stt(language)

    async def _open_stt(self, language: str | None) -> SttStream:
        client = self._client()
        languages = self._backend.catalog.resolve_language(language, self._settings.languages)
        if self._stt is not None:
            await self._stt.aclose()
        self._stt = SttStream.open(
            client,
            encoding=self._settings.stt_encoding,
            languages=languages,
            send=self._send,
            on_error=self._on_stream_error,
            idle_timeout=self._settings.timeouts.stt_audio_idle,
        )
        return self._stt

    async def _on_audio_start(self, event: Event) -> None:
        start = decode(AudioStart.from_event, event)
        stt = self._stt or await self._open_stt(None)
        stt.begin_audio(PcmFormat(start.rate, start.width, start.channels))

    async def _on_audio_chunk(self, event: Event) -> None:
        stt = self._stt
        if stt is None or not stt.has_audio_format:
            # No audio-start: take the format from the chunk itself.
            chunk = decode(AudioChunk.from_event, event)
            stt = stt or await self._open_stt(None)
            stt.begin_audio(PcmFormat(chunk.rate, chunk.width, chunk.channels))
        if event.payload:
            await stt.add_audio(event.payload)

    async def _on_audio_stop(self, event: Event) -> None:
        stt, self._stt = self._stt, None
        if stt is None:
            _LOGGER.debug("audio-stop without a transcription; ignored")
            return
        self._start_task(self._finish_stt(stt))

    async def _finish_stt(self, stt: SttStream) -> None:
        timeouts = self._settings.timeouts
        try:
            # A safety net over the client's own bounds: HA waits forever.
            await stt.finish(timeouts.stt_ready + timeouts.stt_finalize + 1.0)
        finally:
            await stt.aclose()

    # ------------------------------------------------------------------ TTS

    async def _on_synthesize(self, event: Event) -> None:
        synthesize = decode(Synthesize.from_event, event)
        if not isinstance(synthesize.text, str):
            raise MalformedEvent("synthesize: text is not a string")
        stream = self._tts_stream
        if stream is not None and stream.is_duplicate(synthesize.text):
            # HA repeats a streamed text as a plain `synthesize` for old
            # servers (ha-and-wyoming.md §2); speaking it would say it twice.
            _LOGGER.debug("Ignoring the full-text synthesize sent during a stream")
            return
        client = self._client()
        options = self._tts_options(event)
        relay = AudioRelay(self._send, self._settings.tts_sample_rate)
        self._queue_tts(speak(client, synthesize.text, options, relay))

    async def _on_synthesize_start(self, event: Event) -> None:
        if self._tts_stream is not None and not self._tts_stream.finishing:
            raise RequestError("synthesize-start inside a running stream", "unexpected_event")
        client = self._client()
        options = self._tts_options(event)
        relay = AudioRelay(self._send, self._settings.tts_sample_rate)
        stream = TtsStream(
            client,
            options,
            relay,
            self._send,
            idle_timeout=self._settings.timeouts.tts_text_idle,
            on_idle=self._on_stream_error,
        )
        self._tts_stream = stream
        self._queue_tts(self._run_stream(stream))

    async def _on_synthesize_chunk(self, event: Event) -> None:
        chunk = decode(SynthesizeChunk.from_event, event)
        if not isinstance(chunk.text, str):
            raise MalformedEvent("synthesize-chunk: text is not a string")
        stream = self._tts_stream
        if stream is None or stream.finishing:
            raise RequestError("synthesize-chunk outside a stream", "unexpected_event")
        stream.add_text(chunk.text)

    async def _on_synthesize_stop(self, event: Event) -> None:
        stream = self._tts_stream
        if stream is None or stream.finishing:
            raise RequestError("synthesize-stop outside a stream", "unexpected_event")
        stream.finish()

    def _tts_options(self, event: Event) -> TtsOptions:
        # Read `voice` directly: wyoming's SynthesizeVoice drops a speaker sent
        # without a name, and a client may ask for a language only.
        raw = event.data.get("voice") or {}
        fields = [raw.get(key) for key in ("name", "speaker", "language")] if raw else []
        if not isinstance(raw, dict) or any(
            f is not None and not isinstance(f, str) for f in fields
        ):
            raise MalformedEvent(f"{event.type}: voice must hold name, speaker or language strings")
        voice: Voice = self._backend.catalog.resolve_voice(
            raw.get("name"), raw.get("speaker"), raw.get("language")
        )
        return TtsOptions(
            voice_id=voice.voice_id,
            sample_rate=self._settings.tts_sample_rate,
            speed=self._settings.tts_speed,
        )

    def _queue_tts(self, request: Coroutine[Any, Any, None]) -> None:
        """Run after the previous TTS request of this connection: one audio stream at a time."""
        previous = self._tts_task

        async def run_in_turn() -> None:
            try:
                if previous is not None:
                    await asyncio.gather(previous, return_exceptions=True)
                await request
            finally:
                request.close()  # never started if cancelled while waiting its turn

        self._tts_task = self._start_task(run_in_turn())

    async def _run_stream(self, stream: TtsStream) -> None:
        try:
            await stream.run()
        finally:
            if self._tts_stream is stream:
                self._tts_stream = None


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "local client"

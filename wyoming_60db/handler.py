"""Routing one Wyoming connection's requests: STT and TTS over 60db, ``describe``, ``ping``.

The connection's mechanics (reading, bounded writes, failing with an ``error``
and draining, tasks) are ``connection.py``'s; this module says what each event
means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk

from .connection import Connection, peer_text
from .event_protocol import EventProtocol
from .info import PROGRAM_NAME
from .pcm import PcmFormat
from .pipeline.aio import cancel_and_wait
from .sixtydb import SixtyDbClient, SixtyDbError, TtsOptions, Voice
from .state import Backend
from .stt_stream import SttHints, SttStream
from .tts_stream import AudioRelay, TtsStream, speak
from .wire import MalformedEvent, RequestError, decode

_LOGGER = logging.getLogger(__name__)


def handler_factory(
    backend: Backend, events: EventProtocol, writer: asyncio.StreamWriter
) -> SixtyDbEventHandler | RefusedConnection:
    """A handler for a new connection, or a refusal (``--allow``, shutdown)."""
    peer = writer.get_extra_info("peername")
    if not backend.accepting:
        return RefusedConnection(writer)
    if not backend.settings.allow.permits(peer):
        _LOGGER.warning(
            "Refused a connection from %s: not in the allowed networks (%s); see --allow",
            peer_text(peer),
            backend.settings.allow,
        )
        return RefusedConnection(writer)
    return SixtyDbEventHandler(backend, events, writer)


def stdio_handler(
    backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> AsyncEventHandler:
    """The one client on stdin/stdout, whose events wyoming's stdio server reads."""
    return _StdioHandler(reader, writer, SixtyDbEventHandler(backend, None, writer))


class RefusedConnection:
    """Closes the connection without reading or answering anything."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def run(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class _StdioHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: SixtyDbEventHandler,
    ) -> None:
        super().__init__(reader, writer)
        self._handler = handler

    async def handle_event(self, event: Event) -> bool:
        return await self._handler.handle_event(event)


class SixtyDbEventHandler(Connection):
    """STT and TTS requests of one client connection."""

    expected_errors = (RequestError, SixtyDbError)

    def __init__(
        self, backend: Backend, events: EventProtocol | None, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(events, writer, backend.settings, backend.connections)
        self._backend = backend
        self._stt: SttStream | None = None
        self._tts_stream: TtsStream | None = None
        self._tts_task: asyncio.Task[None] | None = None
        self._routes: dict[str, Callable[[Event], Awaitable[None]]] = {
            "describe": self._on_describe,
            "ping": self._on_ping,
            "select-program": self._on_select_program,
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
        stt = self._stt
        return (stt is not None and stt.in_flight) or super().busy

    async def route(self, event: Event) -> None:
        route = self._routes.get(event.type)
        if route is None:
            _LOGGER.debug("Ignoring a %s event", event.type)
            return
        await route(event)

    def take_audio(self, payload: bytes | None) -> bool:
        """The lean path: a chunk of an open transcription whose format is known."""
        stt = self._stt
        if stt is None or not stt.has_audio_format:
            return False  # routed: it opens the transcription or sets the format
        if payload:
            stt.push_audio(payload)
        return True

    async def release(self) -> None:
        stt, self._stt = self._stt, None
        try:
            await cancel_and_wait(self._request_tasks())
        finally:  # the session (and its slot) is released even if we are cancelled meanwhile
            if stt is not None:
                await stt.aclose()

    def _describe_error(self, error: BaseException) -> tuple[str, str]:
        if isinstance(error, SixtyDbError):
            text, code = error.message, error.code
        else:
            text, code = super()._describe_error(error)
        if self._backend.client is not None:
            text = self._backend.client.config.redact(text)  # belt and braces
        return text, code

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

    async def _on_select_program(self, event: Event) -> None:
        # The raw event, not wyoming.info.SelectProgram: wyoming before 1.10 lacks it.
        name = event.data.get("name")
        if not isinstance(name, str):
            raise MalformedEvent("select-program: name is not a string")
        if name != PROGRAM_NAME:
            raise RequestError(
                f"select-program: there is no program {name!r} here; "
                f"the ASR and TTS programs are both {PROGRAM_NAME!r}",
                "unknown_program",
            )

    # ------------------------------------------------------------------ STT

    async def _on_transcribe(self, event: Event) -> None:
        transcribe = decode(Transcribe.from_event, event)
        language = transcribe.language
        if language is not None and not isinstance(language, str):
            raise MalformedEvent("transcribe: language is not a string")
        hints = SttHints.of_transcribe(event.data, self._settings.vad_sensitivity)
        await self._open_stt(language, hints)

    async def _open_stt(self, language: str | None, hints: SttHints | None = None) -> SttStream:
        client = self._client()
        if hints is None:
            hints = SttHints.default(self._settings.vad_sensitivity)
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
            hints=hints,
            endpointing=self._settings.stt_endpointing,
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
            stt.push_audio(event.payload)

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
            # servers (home-assistant.md §2); speaking it would say it twice.
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

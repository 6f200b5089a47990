"""``/ws/tts`` session (§3): contexts, text buffering, flushes, audio chunks.

Each context has its own worker task processing that context's operations in
order, so several contexts on one socket interleave like on a real server.
Request errors answer with an error frame and keep the socket open; only auth,
credits and concurrency close it (1008).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from wyoming_60db.audio import mulaw_encode
from wyoming_60db.sixtydb.limits import MAX_CONTEXT_CHARS
from wyoming_60db.sixtydb.vocabulary import ClientMessage, CloseCode, ServerMessage

from . import tonecode
from .auth import Credentials
from .connection import Connection, ConnectionGone, describe_incoming
from .frames import Frame, now_ms, tts_error_frame
from .handshake import CONCURRENCY_ERRORS, run_handshake
from .recorder import TtsConnectionRecord, TtsRecord
from .ttsconfig import (
    ContextSpec,
    TtsRequestError,
    context_id_of,
    parse_create_context,
    parse_message,
)

_LOGGER = logging.getLogger(__name__)
# ``extra_fields``: an envelope 60db does not document, on purpose outside the
# shared vocabulary, which a tolerant client must skip (§9).
UNKNOWN_TTS_MESSAGE: Final = "heartbeat"

OpKind = Literal["text", "flush", "close"]


@dataclass
class _Context:
    spec: ContextSpec
    record: TtsRecord
    ops: asyncio.Queue[tuple[OpKind, str]] = field(default_factory=asyncio.Queue)
    buffer: list[str] = field(default_factory=list)
    chars: int = 0
    closing: bool = False
    worker: asyncio.Task[None] | None = None
    slot: bool = False  # holds a TTS concurrency slot (concurrency_counts="sessions")


def speakable(text: str) -> str:
    """Tone-code symbols voiced for one flush of ``text`` ("" = nothing to synthesise).

    Leading/trailing whitespace is kept as a space symbol: flushes concatenate,
    so "hello " + "world" must not decode as "helloworld".  Text with no codable
    character at all (e.g. Devanagari) is voiced as one "-" per visible
    character, so it still yields audio of proportional length.
    """
    if not text.strip():
        return ""
    norm = tonecode.normalize(text) or "-" * len("".join(text.split()))
    lead = " " if text[0].isspace() else ""
    tail = " " if text[-1].isspace() else ""
    return lead + norm + tail


def render_audio(text: str, spec: ContextSpec, seconds_per_char: float) -> bytes:
    """Tone-coded audio for ``text`` in the context's encoding and rate (§3.4)."""
    pcm = tonecode.encode_symbols(speakable(text), spec.sample_rate, seconds_per_char)
    if spec.is_mulaw:
        return mulaw_encode(pcm)
    return pcm.astype("<i2").tobytes()  # LINEAR16/PCM: headerless s16le mono


def split_chunks(audio: bytes, size: int, sample_width: int) -> list[bytes]:
    """``size``-byte chunks, rounded down to whole samples."""
    step = max(sample_width, size - size % sample_width)
    return [audio[i : i + step] for i in range(0, len(audio), step)]


class TtsSession:
    def __init__(
        self, conn: Connection, record: TtsConnectionRecord, index: int, creds: Credentials
    ) -> None:
        self.conn = conn
        self.state = conn.state
        self.record = record
        self.index = index
        self.creds = creds
        self.contexts: dict[str, _Context] = {}
        self._done = False

    async def run(self) -> None:
        try:
            if not await run_handshake(self.conn, self.creds):
                return
            while not self._done:
                item = await self.conn.next()
                if item is None:
                    self.record.ended = self.record.ended or "client_closed"
                    return
                await self._dispatch(item.data)
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        for ctx in self.contexts.values():
            if ctx.worker is not None:
                ctx.worker.cancel()
            self._release(ctx)
        workers = [c.worker for c in self.contexts.values() if c.worker is not None]
        await asyncio.gather(*workers, return_exceptions=True)
        self.contexts.clear()

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, data: str | bytes) -> None:
        self.record.received.append(describe_incoming(data))
        try:
            name, payload = parse_message(data)
            if name == ClientMessage.CREATE_CONTEXT:
                await self._create(payload)
            else:
                self._enqueue(name, payload)
        except TtsRequestError as exc:
            await self._send_error(exc.message, exc.code, exc.context_id)

    async def _create(self, payload: dict[str, Any]) -> None:
        cid = context_id_of(payload)
        if cid in self.contexts:
            raise TtsRequestError("Context already exists", "context_exists", cid)
        voice_ids = {voice.voice_id for voice in self.conn.settings.voices}
        spec = parse_create_context(payload, voice_ids, self.conn.settings.tts_min_speed)
        # A socket counted at handshake (concurrency_counts="connections") holds
        # the only slot its contexts need.
        slot = not self.conn.holds_connection_slot
        limit = self.conn.settings.tts_concurrency
        if slot and not self.state.limiter.try_acquire("tts", self.creds.identity, limit):
            # §6: counted over open contexts of the key, across sockets; no queue.
            self._done = True
            message, code = CONCURRENCY_ERRORS["tts"]
            await self._send_error(message, code, cid, {"limit": limit})
            self.record.ended = f"error:{code}"
            await self.conn.close(CloseCode.POLICY_VIOLATION, code)
            return
        record = TtsRecord(
            context_id=cid,
            connection=self.index,
            create=payload,
            encoding=spec.encoding,
            sample_rate=spec.sample_rate,
        )
        self.state.tts_contexts.append(record)
        self.record.contexts.append(cid)
        ctx = _Context(spec, record, slot=slot)
        self.contexts[cid] = ctx
        await self.conn.send(self._ack(ServerMessage.CONTEXT_CREATED, cid))
        ctx.worker = asyncio.create_task(self._work(ctx))
        await self._maybe_heartbeat()

    def _enqueue(self, name: ClientMessage, payload: dict[str, Any]) -> None:
        cid = context_id_of(payload)
        ctx = self.contexts.get(cid)
        if ctx is None or ctx.closing:
            raise TtsRequestError("Context not found", "context_not_found", cid)
        if name == ClientMessage.SEND_TEXT:
            text = payload.get("text")
            if not isinstance(text, str):
                raise TtsRequestError("text must be a string", "invalid_parameter", cid)
            if ctx.chars + len(text) > MAX_CONTEXT_CHARS:
                raise TtsRequestError("Text too long", "text_too_long", cid)
            ctx.chars += len(text)
            ctx.record.texts.append(text)
            ctx.ops.put_nowait(("text", text))
        elif name == ClientMessage.FLUSH_CONTEXT:
            ctx.ops.put_nowait(("flush", ""))
        else:  # close_context
            ctx.closing = True
            ctx.ops.put_nowait(("close", ""))

    # ------------------------------------------------------------------ per-context worker

    async def _work(self, ctx: _Context) -> None:
        try:
            while True:
                kind, text = await ctx.ops.get()
                if kind == "text":
                    ctx.buffer.append(text)  # §3.3: accumulates until a flush
                elif kind == "flush":
                    ctx.record.flush_count += 1
                    await self._synthesize(ctx)
                    await self.conn.send(
                        self._ack(ServerMessage.FLUSH_COMPLETED, ctx.spec.context_id)
                    )
                    await self._maybe_heartbeat()
                else:
                    await self._synthesize(ctx)  # §3.3: close flushes the remainder
                    await self._close_context(ctx)
                    return
        except ConnectionGone:
            return
        except Exception:
            _LOGGER.exception("TTS context worker failed")
            await self.conn.close(CloseCode.INTERNAL_ERROR, "internal error")

    async def _synthesize(self, ctx: _Context) -> None:
        text = "".join(ctx.buffer)
        ctx.buffer.clear()
        settings = self.conn.settings
        if not speakable(text):
            return  # empty buffer: only the ack follows
        audio = render_audio(text, ctx.spec, settings.tts_seconds_per_char)
        width = 1 if ctx.spec.is_mulaw else 2
        await self.conn.pause(settings.first_chunk_latency)
        for i, chunk in enumerate(split_chunks(audio, settings.tts_chunk_bytes, width)):
            if i:
                await self.conn.pause(settings.chunk_gap)
            await self._send_chunk(ctx, chunk)

    async def _send_chunk(self, ctx: _Context, chunk: bytes) -> None:
        frame: Frame = {
            ServerMessage.AUDIO_CHUNK: {
                "context_id": ctx.spec.context_id,
                "audioContent": base64.b64encode(chunk).decode("ascii"),
            }
        }
        sent_before = self.conn.audio_chunks_sent
        try:
            await self.conn.send(frame, audio_chunk=True)
        finally:
            # A fault due after this chunk raises once it is out: record it anyway.
            if self.conn.audio_chunks_sent > sent_before:
                ctx.record.audio.extend(chunk)

    async def _close_context(self, ctx: _Context) -> None:
        cid = ctx.spec.context_id
        await self.conn.send(self._ack(ServerMessage.CONTEXT_CLOSED, cid))
        ctx.record.closed = True
        del self.contexts[cid]
        self._release(ctx)
        if self.conn.settings.close_tts_after_context_closed and not self.contexts:
            # §9.6: the T-REF diagram closes the connection after context_closed.
            self.record.ended = ServerMessage.CONTEXT_CLOSED
            await self.conn.close(CloseCode.NORMAL)

    def _release(self, ctx: _Context) -> None:
        if ctx.slot:
            ctx.slot = False
            self.state.limiter.release("tts", self.creds.identity)

    # ------------------------------------------------------------------ frames

    def _ack(self, name: ServerMessage, cid: str) -> Frame:
        """§3.4 ``{"<name>": {"context_id": …}}`` or the 3P ``{"<name>": true}``."""
        if self.conn.settings.tts_ack_style == "bool":
            return {name: True}
        return {name: {"context_id": cid}}

    async def _send_error(
        self, message: str, code: str, cid: str | None, details: dict[str, Any] | None = None
    ) -> None:
        style = self.conn.settings.tts_error_style
        await self.conn.send(tts_error_frame(style, message, code, details, cid))

    async def _maybe_heartbeat(self) -> None:
        """``extra_fields``: an unknown envelope a tolerant client must skip."""
        if self.conn.settings.extra_fields:
            await self.conn.send({UNKNOWN_TTS_MESSAGE: {"timestamp": now_ms()}})

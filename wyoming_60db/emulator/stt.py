"""``/ws/stt`` session (§2): start → audio → transcription events → stop.

Utterance events (``speech_started``, interim and final transcriptions, the
``usage_update`` extra) leave through one ordered lane. Normally a frame is
sent at once, as it is produced; with ``context`` the canonical final waits the
modelled LLM latency (``stt_llm_latency_ms``) after its first emit. That wait
runs in a background task, so the session keeps reading and recognising audio
and answers ``test``/``config`` meanwhile, while whatever the lane holds
behind the pending canonical (the next utterance's events) waits its turn.
``stop`` drains the lane before ``session_stopped``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from wyoming_60db.audio import mulaw_decode_array
from wyoming_60db.sixtydb.vocabulary import ClientMessage, CloseCode, ServerMessage

from .auth import Credentials
from .catalog import STT_MODEL_ID
from .connection import Connection, ConnectionGone
from .frames import Frame
from .handshake import CONCURRENCY_ERRORS, run_handshake
from .recognizer import Event, FinalTranscript, Interim, Recognizer, SpeechStarted
from .recorder import FinalCause, SentFinal, SttRecord, elide_audio
from .sttconfig import SttConfig, SttRequestError, parse_languages, parse_start

_INTERIM_CONFIDENCE: Final = 0.7
# ``extra_fields``: a message type 60db does not document, on purpose outside
# the shared vocabulary, which a tolerant client must skip (§9).
UNKNOWN_STT_MESSAGE: Final = "usage_update"

OnSent = Callable[[float], None]  # called with time.perf_counter() once the frame is out


@dataclass(frozen=True)
class _Queued:
    """A frame waiting in the session's ordered lane."""

    frame: Frame
    delay: float  # seconds to wait after the previous lane frame went out
    on_sent: OnSent | None


class SttSession:
    def __init__(self, conn: Connection, record: SttRecord, creds: Credentials) -> None:
        self.conn = conn
        self.state = conn.state
        self.record = record
        self.creds = creds
        self.config: SttConfig | None = None
        self.recognizer: Recognizer | None = None
        self._slot = False  # holds an STT concurrency slot
        self._done = False
        self._sentence_id = 0
        self._odd_byte = b""  # linear PCM split across frames mid-sample
        self._lane: deque[_Queued] = deque()
        self._sender: asyncio.Task[None] | None = None  # drains _lane while it is not empty

    async def run(self) -> None:
        try:
            if not await run_handshake(self.conn, self.creds, self._connected_early):
                return
            while not self._done:
                item = await self.conn.next()
                if item is None:
                    self.record.ended = self.record.ended or "client_closed"
                    return
                await self._handle(item.data)
        finally:
            await self._cancel_sender()
            if self._slot:
                self.state.limiter.release("stt", self.creds.identity)

    async def _connected_early(self) -> None:
        # §9.1 variant: the S-REF diagram order connecting → connected → established.
        if self.conn.settings.stt_connected == "before_established":
            await self.conn.send(self._connected_frame())

    # ------------------------------------------------------------------ dispatch

    async def _handle(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.record.received.append({"binary_frame": len(data)})
            if self.config is None:
                await self._fail("Audio received before start", "session_not_started")
                return
            self.record.binary_frames += 1
            # §9.3: binary frames follow config.encoding, or (variant) are μ-law.
            await self._audio(data, mulaw=self.conn.settings.stt_binary_encoding == "mulaw")
            return
        try:
            msg = json.loads(data)
        except ValueError:
            self.record.received.append({"invalid_json": data[:200]})
            await self._fail("Invalid JSON", "invalid_json")
            return
        self.record.received.append(_describe(msg))
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            await self._fail("Message must be an object with a type", "invalid_message")
            return
        handler = {
            ClientMessage.START: self._on_start,
            ClientMessage.AUDIO: self._on_audio,
            ClientMessage.CONFIG: self._on_config,
            ClientMessage.STOP: self._on_stop,
            ClientMessage.TEST: self._on_test,
        }.get(msg["type"])
        if handler is None:
            await self._fail(f"Unknown message type: {msg['type']}", "invalid_message")
            return
        await handler(msg)

    async def _fail(self, message: str, code: str) -> None:
        self._done = True
        # Validation errors close with 1007: 1008 stays for policy (§2.6).
        await self.conn.reject(message, code, CloseCode.INVALID_DATA)

    # ------------------------------------------------------------------ messages

    async def _on_start(self, msg: dict[str, Any]) -> None:
        if self.config is not None:
            await self._fail("Session already started", "session_already_started")
            return
        try:
            config = parse_start(msg, self.conn.settings)
        except SttRequestError as exc:
            await self._fail(exc.message, exc.code)
            return
        # A socket already counted at handshake (concurrency_counts="connections")
        # does not take a second slot for its session.
        if not self.conn.holds_connection_slot:
            limit = self.conn.settings.stt_concurrency
            if not self.state.limiter.try_acquire("stt", self.creds.identity, limit):
                self._done = True
                message, code = CONCURRENCY_ERRORS["stt"]
                await self.conn.reject(message, code, CloseCode.POLICY_VIOLATION, {"limit": limit})
                return
            self._slot = True
        self.config = config
        self.record.start = {k: v for k, v in msg.items() if k != "type"}
        self.record.config = config.effective()
        self.record.languages = config.languages
        self.recognizer = Recognizer(
            config.sample_rate,
            config.utterance_end_ms,
            config.interim_ms,
            self.conn.settings.tts_seconds_per_char,
            self.state.next_script,
        )
        if self.conn.settings.stt_connected == "after_start":  # §2.2 emulator rule
            await self.conn.send(self._connected_frame())
        await self.conn.send(
            {
                "type": ServerMessage.SESSION_STARTED,
                "session_id": f"sess_{uuid.uuid4().hex[:12]}",
                "language": _language_label(config.languages),
                "model": STT_MODEL_ID,
            }
        )
        await self._maybe_usage_update()

    async def _on_audio(self, msg: dict[str, Any]) -> None:
        if self.config is None:
            await self._fail("Audio received before start", "session_not_started")
            return
        payload = msg.get("audio")
        try:
            if not isinstance(payload, str):
                raise ValueError("audio must be a base64 string")
            data = base64.b64decode(payload, validate=True)
        except (ValueError, binascii.Error):
            await self._fail("Invalid base64 audio", "invalid_message")
            return
        self.record.json_frames += 1
        await self._audio(data)

    async def _on_config(self, msg: dict[str, Any]) -> None:
        if self.config is None:
            await self._fail("config received before start", "session_not_started")
            return
        if "languages" in msg:
            try:
                languages = parse_languages(msg["languages"])
            except SttRequestError as exc:
                await self._fail(exc.message, exc.code)
                return
            self.config.languages = languages
            self.record.languages = languages
            await self.conn.send(
                {
                    "type": ServerMessage.LANGUAGE_CHANGED,
                    "language": _language_label(languages),
                    "language_code": languages,
                }
            )
        if "continuous_mode" in msg:
            mode = msg["continuous_mode"]
            if not isinstance(mode, bool):
                await self._fail("continuous_mode must be a boolean", "invalid_message")
                return
            self.config.continuous_mode = mode
            await self.conn.send(
                {
                    "type": ServerMessage.MODE_CHANGED,
                    "continuous_mode": mode,
                    "mode_name": "continuous" if mode else "single",
                    "silence_threshold": self.config.utterance_end_ms / 1000,
                }
            )

    async def _on_test(self, _msg: dict[str, Any]) -> None:
        await self.conn.send({"type": ServerMessage.TEST_RESPONSE, "timestamp": time.time()})

    async def _on_stop(self, _msg: dict[str, Any]) -> None:
        self._done = True
        # A canonical final still waiting for its LLM latency keeps waiting
        # (in the lane task) during this pause; both must end before
        # session_stopped.
        await self.conn.pause(self.conn.settings.finalize_latency)
        seconds = 0.0
        if self.recognizer is not None:
            events = self.recognizer.finish()
            ended_at = time.perf_counter()
            for event in events:
                await self._emit(event, ended_at)
            await self._lane_drained()
            seconds = self.recognizer.total_samples / self.recognizer.rate
            if self.recognizer.utterances == 0 and self.conn.settings.stt_empty_final_on_silence:
                await self._send_empty_final(seconds, ended_at)
        billing = {
            "total_duration_seconds": round(seconds, 3),
            "total_cost": round(seconds * self.conn.settings.stt_cost_per_second, 8),
        }
        self.record.billing = billing
        await self.conn.send({"type": ServerMessage.SESSION_STOPPED, "billing_summary": billing})
        self.record.ended = "stopped"
        await self.conn.close(CloseCode.NORMAL)

    # ------------------------------------------------------------------ audio

    async def _audio(self, data: bytes, mulaw: bool = False) -> None:
        assert self.config is not None
        assert self.recognizer is not None
        self.record.audio.extend(data)
        await self.conn.count_audio(len(data))  # Fault.after_audio_bytes
        if mulaw or self.config.encoding == "mulaw":
            pcm = mulaw_decode_array(data)
        else:
            data = self._odd_byte + data
            cut = len(data) - len(data) % 2
            self._odd_byte = data[cut:]
            pcm = np.frombuffer(data[:cut], dtype="<i2").astype(np.int16)
        events = self.recognizer.feed(pcm)
        ended_at = time.perf_counter()
        for event in events:
            await self._emit(event, ended_at)

    async def _emit(self, event: Event, ended_at: float) -> None:
        if isinstance(event, SpeechStarted):
            await self._send_in_order(
                {"type": ServerMessage.SPEECH_STARTED, "timestamp": time.time()}
            )
        elif isinstance(event, Interim):
            await self._send_in_order(
                {
                    "type": ServerMessage.TRANSCRIPTION,
                    "text": event.text,
                    "is_final": False,
                    "speech_final": False,
                    "is_partial": True,
                    "confidence": _INTERIM_CONFIDENCE,
                    "language": self._language(),
                }
            )
        else:
            await self._emit_final(event, ended_at)

    async def _emit_final(self, result: FinalTranscript, ended_at: float) -> None:
        """§2.5: one canonical event, or first-emit + canonical when ``context`` was sent.

        ``stt_llm_refinement=False`` models a plan without refinement: the
        context is accepted but the flow is the one without it (§8.12).
        """
        assert self.config is not None
        settings = self.conn.settings
        self._sentence_id += 1
        sentence_id = self._sentence_id
        base: Frame = {
            "type": ServerMessage.TRANSCRIPTION,
            "text": result.text,
            "is_final": True,
            "speech_final": True,
            "is_partial": False,
            "sentence_id": sentence_id,
            "confidence": result.confidence,
            "language": self._language(),
        }
        canonical: Frame = {**base, "duration": result.duration, "snr_db": result.snr_db}
        text = result.text
        delay = 0.0
        if self.config.context is not None and settings.stt_llm_refinement:
            await self._send_in_order(
                {**base, "speech_final": False},
                on_sent=self._recorder(result, sentence_id, result.text, False, ended_at),
            )
            if settings.stt_llm_refine_text:
                # Emulated refinement: sentence-case, so a client that uses the
                # canonical text is distinguishable from one using the first emit.
                text = text[:1].upper() + text[1:]
            latency_ms = max(0, settings.stt_llm_latency_ms)
            canonical.update(text=text, llm_applied=True, llm_latency_ms=latency_ms)
            delay = latency_ms / 1000
        await self._send_in_order(
            canonical,
            delay=delay,
            on_sent=self._recorder(result, sentence_id, text, True, ended_at),
        )
        await self._maybe_usage_update()

    def _recorder(
        self,
        result: FinalTranscript,
        sentence_id: int,
        text: str,
        speech_final: bool,
        ended_at: float,
    ) -> OnSent:
        """Records a final once it has actually been sent (a dropped one never is)."""

        def sent(sent_at: float) -> None:
            if speech_final:
                self.record.transcripts.append(text)
            self.record.finals.append(
                SentFinal(
                    text=text,
                    sentence_id=sentence_id,
                    speech_final=speech_final,
                    cause=result.cause,
                    audio_seconds=result.audio_seconds,
                    ended_at=ended_at,
                    sent_at=sent_at,
                )
            )

        return sent

    async def _send_empty_final(self, seconds: float, ended_at: float) -> None:
        await self.conn.send(_empty_final())
        cause: FinalCause = "stop"
        self.record.finals.append(
            SentFinal("", None, True, cause, round(seconds, 4), ended_at, time.perf_counter())
        )

    async def _maybe_usage_update(self) -> None:
        """``extra_fields``: an unknown message type a tolerant client must skip."""
        if not self.conn.settings.extra_fields:
            return
        seconds = self.recognizer.total_samples / self.recognizer.rate if self.recognizer else 0.0
        await self._send_in_order({"type": UNKNOWN_STT_MESSAGE, "audio_seconds": round(seconds, 3)})

    # ------------------------------------------------------------------ ordered lane

    async def _send_in_order(
        self, frame: Frame, *, delay: float = 0.0, on_sent: OnSent | None = None
    ) -> None:
        """Send an utterance event after everything queued before it.

        With nothing queued and no delay the frame goes out now, from the
        caller (so faults fire in the session task, as for every other send).
        Otherwise it joins the lane, which a background task drains.
        """
        idle = not self._lane and (self._sender is None or self._sender.done())
        if idle and delay <= 0:
            await self._transmit(frame, on_sent)
            return
        self._lane.append(_Queued(frame, delay, on_sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain_lane(), name="emulator-stt-lane")

    async def _transmit(self, frame: Frame, on_sent: OnSent | None) -> None:
        await self.conn.send(frame)
        if on_sent is not None:
            on_sent(time.perf_counter())

    async def _drain_lane(self) -> None:
        try:
            while self._lane:
                item = self._lane.popleft()
                await self.conn.pause(item.delay)  # ends early (ConnectionGone) if the socket goes
                await self._transmit(item.frame, item.on_sent)
        except ConnectionGone:
            # The socket closed, dropped or a fault fired: the session's reader
            # sees the end and unwinds the session; nothing more can be sent.
            self._lane.clear()

    async def _lane_drained(self) -> None:
        """Wait until every queued utterance event has been sent (or the socket is gone)."""
        sender = self._sender
        if sender is not None:
            await sender

    async def _cancel_sender(self) -> None:
        sender, self._sender = self._sender, None
        self._lane.clear()
        if sender is None or sender.done():
            return
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

    # ------------------------------------------------------------------ helpers

    def _language(self) -> str:
        assert self.config is not None
        if self.config.languages:
            return self.config.languages[0]
        return self.conn.settings.detected_language  # auto-detect (languages: null)

    def _connected_frame(self) -> Frame:
        return {
            "type": ServerMessage.CONNECTED,
            "server_info": {"server_type": "60db STT", "ready": True, "model": STT_MODEL_ID},
        }


def _language_label(languages: list[str] | None) -> str:
    """RV fixtures: ``"EN"`` / ``"Multi-language: HI"``; GUESS for auto."""
    if not languages:
        return "Auto-detect"
    if len(languages) == 1:
        return languages[0].upper()
    return "Multi-language: " + ", ".join(code.upper() for code in languages)


def _empty_final() -> Frame:
    """§2.5 empty canonical final (RV fixture shape)."""
    return {
        "type": ServerMessage.TRANSCRIPTION,
        "text": "",
        "is_final": True,
        "speech_final": True,
        "processing_mode": "speech_end_no_result",
        "confidence": 0.0,
        "timestamp": time.time(),
    }


def _describe(msg: Any) -> dict[str, Any]:
    if isinstance(msg, dict):
        described: dict[str, Any] = elide_audio(msg)
        return described
    return {"non_object": msg}

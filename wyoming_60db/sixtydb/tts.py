"""Streaming text-to-speech contexts over ``/ws/tts`` (60db-protocol.md §3)."""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from . import protocol
from .channel import Channel, Wakeup
from .config import Timeouts
from .errors import (
    ConnectionLostError,
    InvalidRequestError,
    ProtocolError,
    SixtyDbTimeoutError,
    TextTooLongError,
    UnsupportedAudioFormatError,
)
from .limits import (
    DEFAULT_SIMILARITY,
    DEFAULT_SPEED,
    DEFAULT_STABILITY,
    MAX_CONTEXT_CHARS,
    PERCENT_RANGE,
    SPEED_RANGE,
    TTS_SAMPLE_RATES,
)
from .vocabulary import ClientMessage, ServerMessage

_LOGGER = logging.getLogger(__name__)

TtsEncoding = Literal["LINEAR16", "PCM", "MULAW", "ULAW", "OGG_OPUS"]


@dataclass(frozen=True, slots=True)
class TtsOptions:
    """Voice and audio format of one TTS context."""

    voice_id: str
    encoding: TtsEncoding = "LINEAR16"
    sample_rate: int = 16000
    speed: float = DEFAULT_SPEED
    stability: float = DEFAULT_STABILITY
    similarity: float = DEFAULT_SIMILARITY

    def __post_init__(self) -> None:
        rates = TTS_SAMPLE_RATES.get(self.encoding)
        if rates is None:
            raise UnsupportedAudioFormatError(f"60db TTS has no encoding {self.encoding!r}")
        if self.sample_rate not in rates:
            allowed = ", ".join(map(str, sorted(rates)))
            raise UnsupportedAudioFormatError(
                f"60db TTS {self.encoding} is available at {allowed} Hz, not {self.sample_rate}"
            )
        low, high = SPEED_RANGE
        if not low <= self.speed <= high:
            raise InvalidRequestError(f"speed must be between {low} and {high}, got {self.speed}")
        low, high = PERCENT_RANGE
        for name in ("stability", "similarity"):
            value = getattr(self, name)
            if not low <= value <= high:
                raise InvalidRequestError(
                    f"{name} must be between {low:g} and {high:g}, got {value}"
                )

    def create_message(self, context_id: str) -> dict[str, Any]:
        """``create_context`` (§3.3): speed, stability and similarity sit at the top level."""
        return {
            ClientMessage.CREATE_CONTEXT: {
                "context_id": context_id,
                "voice_id": self.voice_id,
                "audio_config": {
                    "audio_encoding": self.encoding,
                    "sample_rate_hertz": self.sample_rate,
                },
                "speed": self.speed,
                "stability": self.stability,
                "similarity": self.similarity,
            }
        }


class TtsContext:
    """One synthesis context on a TTS connection.

    Text is sent with :meth:`send_text` and synthesised on :meth:`flush`; the
    audio of every flush arrives, in order, from :meth:`audio`, which ends once
    :meth:`close` has been answered by ``context_closed``. Sending and reading
    run concurrently, so a caller can flush sentence after sentence while the
    first one is still playing.
    """

    def __init__(self, channel: Channel, options: TtsOptions, timeouts: Timeouts) -> None:
        self.options = options
        self.context_id = f"wy60-{uuid.uuid4().hex}"
        self.channel = channel
        self._timeouts = timeouts
        self._chars = 0
        self._outstanding_flushes = 0
        self._close_requested = False
        self._deadline: float | None = None
        self._first_audio_pending = False
        self.finished = False
        # How many flushes 60db has answered with `flush_completed`: their audio
        # is complete. A caller that resumes the text on a new context after a
        # drop learns from it which flushes to send again.
        self.flushes_completed = 0

    async def open(self) -> None:
        """Send ``create_context`` and wait for ``context_created``."""
        await self.channel.send(self.options.create_message(self.context_id))
        deadline = time.monotonic() + self._timeouts.connect
        while True:
            message = await self.channel.receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise ConnectionLostError(
                    "60db closed the TTS connection before the context opened"
                )
            if isinstance(message, Wakeup) or not self._is_mine(message):
                continue
            name = protocol.kind(message)
            if name == ServerMessage.CONTEXT_CREATED:
                return
            if name == ServerMessage.ERROR:
                raise self.channel.scrub(protocol.error(message, service="tts"))

    async def send_text(self, text: str) -> None:
        """Append text to the context; nothing is spoken before a flush."""
        if not text:
            return
        if self._chars + len(text) > MAX_CONTEXT_CHARS:
            raise TextTooLongError(
                f"60db takes at most {MAX_CONTEXT_CHARS} characters per TTS context"
            )
        self._chars += len(text)
        await self.channel.send(
            {ClientMessage.SEND_TEXT: {"context_id": self.context_id, "text": text}}
        )

    async def flush(self) -> None:
        """Ask 60db to speak everything sent so far."""
        await self.channel.send({ClientMessage.FLUSH_CONTEXT: {"context_id": self.context_id}})
        self._outstanding_flushes += 1
        self._expect_first_audio()

    async def close(self) -> None:
        """Ask 60db to end the context; :meth:`audio` ends at ``context_closed``."""
        if self._close_requested:
            return
        self._close_requested = True
        await self.channel.send({ClientMessage.CLOSE_CONTEXT: {"context_id": self.context_id}})
        self._expect_first_audio()

    async def audio(self) -> AsyncIterator[bytes]:
        """Decoded audio chunks, relayed the moment each arrives."""
        while not self.finished:
            message = await self._next_message()
            if message is None:
                if self._close_requested and self._outstanding_flushes == 0:
                    self.finished = True  # closed right after the last audio (§9.6)
                    return
                raise ConnectionLostError(
                    "60db closed the TTS connection in the middle of a request"
                )
            if isinstance(message, Wakeup) or not self._is_mine(message):
                continue
            chunk = self._handle(message)
            if chunk:
                yield chunk

    def _handle(self, message: protocol.JsonObject) -> bytes | None:
        name = protocol.kind(message)
        if name == ServerMessage.AUDIO_CHUNK:
            chunk = _audio_of(message)
            self._first_audio_pending = False
            self._deadline = time.monotonic() + self._timeouts.tts_chunk_gap
            return chunk
        if name == ServerMessage.FLUSH_COMPLETED:
            self.flushes_completed += 1
            self._outstanding_flushes = max(0, self._outstanding_flushes - 1)
            if not self._outstanding_flushes and not self._close_requested:
                self._deadline = None  # waiting for more text is not a 60db stall
        elif name == ServerMessage.CONTEXT_CLOSED:
            self.finished = True
        elif name == ServerMessage.ERROR:
            raise self.channel.scrub(protocol.error(message, service="tts"))
        return None

    async def _next_message(self) -> protocol.JsonObject | Wakeup | None:
        timeout = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
        try:
            return await self.channel.receive(timeout)
        except SixtyDbTimeoutError:
            first = self._first_audio_pending
            what = "the first audio" if first else "the next audio chunk"
            limit = self._timeouts.tts_first_audio if first else self._timeouts.tts_chunk_gap
            raise SixtyDbTimeoutError(
                f"60db TTS did not send {what} within {limit:.0f} s"
            ) from None

    def _expect_first_audio(self) -> None:
        if self._deadline is None:
            self._first_audio_pending = True
            self._deadline = time.monotonic() + self._timeouts.tts_first_audio
            self.channel.wake()

    def _is_mine(self, message: protocol.JsonObject) -> bool:
        name = protocol.kind(message)
        other = protocol.context_id(message, name) if name else None
        # Acks without an id (`{"context_created": true}`, §3.4) belong to the
        # only context this connection carries.
        return other is None or other == self.context_id


def _audio_of(message: protocol.JsonObject) -> bytes:
    content = protocol.body(message, ServerMessage.AUDIO_CHUNK).get("audioContent")
    if not isinstance(content, str):
        raise ProtocolError("60db sent an audio_chunk without audioContent")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("60db sent an audio_chunk that is not base64") from None

"""WAV framing between Home Assistant and 60db.

Home Assistant's STT stream is raw PCM in a pipeline, but a WAV file (header
first) through its HTTP API; 60db takes headerless PCM (60db-protocol.md
§2.3.1), converted by ``wyoming_60db.pipeline.SttFeed``. TTS answers go back
as WAV: 60db sends raw PCM.
"""

from __future__ import annotations

import io
import struct
import wave
from typing import Final

_RIFF_HEADER: Final = 12  # "RIFF" <size> "WAVE"
_CHUNK_HEADER: Final = 8  # <id> <size>
_MAX_HEADER: Final = 64 * 1024  # a WAV with more metadata than this is not speech input


def wav_header(rate: int, width: int = 2, channels: int = 1) -> bytes:
    """A WAV header of unknown length (0 frames) for streaming, as HA's wyoming does."""
    return wav_file(b"", rate, width, channels)


def wav_file(pcm: bytes, rate: int, width: int = 2, channels: int = 1) -> bytes:
    """A complete WAV file around raw PCM."""
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(rate)
            writer.setsampwidth(width)
            writer.setnchannels(channels)
            writer.writeframes(pcm)
        return buffer.getvalue()


class WavHeaderStripper:
    """Drops a leading WAV header from a PCM stream; raw PCM passes untouched."""

    def __init__(self) -> None:
        self._head = b""
        self._done = False

    def feed(self, data: bytes) -> bytes:
        """The PCM in ``data`` (possibly empty while a header is being read)."""
        if self._done:
            return data
        self._head += data
        if len(self._head) < _RIFF_HEADER:
            return b""
        if self._head[:4] != b"RIFF" or self._head[8:12] != b"WAVE":
            return self._finish(0)
        offset = _RIFF_HEADER
        while offset + _CHUNK_HEADER <= len(self._head):
            chunk_id = self._head[offset : offset + 4]
            (size,) = struct.unpack_from("<I", self._head, offset + 4)
            if chunk_id == b"data":
                return self._finish(offset + _CHUNK_HEADER)
            offset += _CHUNK_HEADER + size + (size & 1)  # chunks are word-aligned
        if len(self._head) > _MAX_HEADER:
            return self._finish(0)  # not a WAV we understand: pass the bytes on
        return b""

    def flush(self) -> bytes:
        """Whatever is still held back when the stream ends (a cut-off header is dropped)."""
        if self._done:
            return b""
        return self._finish(len(self._head) if self._head.startswith(b"RIFF") else 0)

    def _finish(self, skip: int) -> bytes:
        self._done = True
        data, self._head = self._head[skip:], b""
        return data

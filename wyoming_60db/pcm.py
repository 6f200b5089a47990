"""PCM formats and re-framing: the audio pieces that need no numpy.

The Wyoming server imports this on every request. Home Assistant's 16 kHz,
16-bit mono audio needs nothing else, so the numpy- and soxr-based converter in
:mod:`wyoming_60db.audio` is imported only when a request really converts
(numpy alone is about 15 MiB of resident memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

BytesLike = bytes | bytearray | memoryview


MIN_RATE: Final = 8000
MAX_RATE: Final = 48000


class UnsupportedAudioFormat(ValueError):
    """The audio format is outside what the converter handles."""


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """Interleaved linear PCM: 8-bit is unsigned (as in WAV), wider is signed LE."""

    rate: int
    width: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample for every channel)."""
        return self.width * self.channels

    def validate(self) -> PcmFormat:
        """Return self, or raise UnsupportedAudioFormat saying what is wrong."""
        problems = []
        if not MIN_RATE <= self.rate <= MAX_RATE:
            problems.append(f"rate {self.rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
        if self.width not in (1, 2, 3, 4):
            problems.append(f"sample width {self.width} bytes is not 1, 2, 3 or 4")
        if self.channels not in (1, 2):
            problems.append(f"{self.channels} channels is not mono or stereo")
        if problems:
            raise UnsupportedAudioFormat(f"unsupported audio format {self}: " + "; ".join(problems))
        return self


def frame_bytes_for(rate: int, width: int, channels: int, milliseconds: int) -> int:
    """Bytes in `milliseconds` of audio, rounded down to whole frames (at least one)."""
    if milliseconds <= 0:
        raise ValueError(f"milliseconds must be positive, got {milliseconds}")
    fmt = PcmFormat(rate, width, channels).validate()
    frames = max(1, rate * milliseconds // 1000)
    return frames * fmt.frame_bytes


# ---------------------------------------------------------------------------
# Re-framing
# ---------------------------------------------------------------------------


class FrameChunker:
    """Re-chunk a byte stream into fixed-size frames.

    Each byte is copied once, into its output frame, except the few bytes of a
    frame that straddles two pushes, which wait in a small buffer.  An input
    that is exactly one frame and arrives on a frame boundary is returned as is.
    """

    __slots__ = ("_buffer", "frame_bytes")

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.frame_bytes = frame_bytes
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes waiting for the next frame."""
        return len(self._buffer)

    def push(self, data: BytesLike) -> list[bytes]:
        """Add data; return the frames it completes (possibly none)."""
        size = self.frame_bytes
        if not self._buffer and len(data) == size and isinstance(data, bytes):
            return [data]
        view = memoryview(data).cast("B")
        frames: list[bytes] = []
        start = 0
        if self._buffer:
            start = min(size - len(self._buffer), len(view))
            self._buffer += view[:start]
            if len(self._buffer) < size:
                return frames
            frames.append(bytes(self._buffer))
            self._buffer.clear()
        end = start + (len(view) - start) // size * size
        frames.extend(view[i : i + size].tobytes() for i in range(start, end, size))
        self._buffer += view[end:]
        return frames

    def flush(self) -> bytes:
        """Return (and forget) the incomplete remainder, possibly b""."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

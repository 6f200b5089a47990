"""Emulated STT engine: energy VAD + utterance segmentation + tone-code decoding.

Everything is measured in *audio* time (samples received), never wall time, so
results do not depend on how fast or in what chunks the client streams.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from . import tonecode

Int16Array = npt.NDArray[np.int16]

_FRAME_SECONDS: Final = 0.01
_PREROLL_FRAMES: Final = 2
_TAIL_SECONDS: Final = 0.02  # kept after the last voiced frame when decoding
# Silence after which the pending final is decoded ahead of its end (see
# Recognizer._on_frame): long enough that gaps inside speech do not trigger it,
# well inside 60db's 300 ms minimum utterance_end_ms.
_EARLY_DECODE_SECONDS: Final = 0.1
# -35 dBFS RMS: tone code at -20 dB (-29 dBFS) is voiced, 30 dB-SNR noise is not.
_VAD_POWER: Final = (32768 * 10 ** (-35 / 20)) ** 2
_NOISE_FLOOR_POWER: Final = 1.0  # digital silence: avoids log(0)

CONFIDENCE_TONE: Final = 0.95
CONFIDENCE_SCRIPTED: Final = 0.9
CONFIDENCE_PLACEHOLDER: Final = 0.5


@dataclass(frozen=True)
class SpeechStarted:
    audio_seconds: float  # offset of the utterance in the session's audio


@dataclass(frozen=True)
class Interim:
    text: str


@dataclass(frozen=True)
class FinalTranscript:
    text: str
    confidence: float
    duration: float
    snr_db: float
    source: str  # "tone" | "script" | "placeholder"
    # Session audio (seconds) processed when the utterance was ended, and why:
    # "silence" = utterance_end_ms of trailing silence, "stop" = end of stream.
    audio_seconds: float = 0.0
    cause: Literal["silence", "stop"] = "silence"


Event = SpeechStarted | Interim | FinalTranscript


class Recognizer:
    """Feed PCM16 samples, get VAD / interim / final events."""

    def __init__(
        self,
        rate: int,
        utterance_end_ms: int,
        interim_ms: int | None,
        seconds_per_char: float,
        script: Callable[[], str | None],
    ) -> None:
        self.rate = rate
        self.total_samples = 0
        self._processed = 0  # samples passed through whole VAD frames (the decision point)
        self.utterances = 0
        self._frame = max(1, round(rate * _FRAME_SECONDS))
        self._end_samples = round(rate * utterance_end_ms / 1000)
        self._interim_samples = round(rate * interim_ms / 1000) if interim_ms else None
        self._spc = seconds_per_char
        self._script = script
        self._pending: Int16Array = np.zeros(0, dtype=np.int16)
        self._preroll: deque[Int16Array] = deque(maxlen=_PREROLL_FRAMES)
        self._utt: list[Int16Array] | None = None
        self._memo: tonecode.SlotMemo = {}  # slots of this utterance already classified
        self._tail = round(_TAIL_SECONDS * rate)
        self._early_at = min(round(_EARLY_DECODE_SECONDS * rate), self._end_samples)
        # try_decode of the utterance decoded early in a pause (see _on_frame),
        # valid while voiced_end is still _early_end (-1: none).
        self._early_text: str | None = None
        self._early_end = -1
        self._utt_samples = 0
        self._preroll_samples = 0
        self._voiced_end = 0
        self._silence_run = 0
        self._next_interim = 0
        self._voiced_power = 0.0
        self._voiced_frames = 0
        self._noise_power = 0.0
        self._noise_frames = 0

    @property
    def in_utterance(self) -> bool:
        return self._utt is not None

    def feed(self, pcm: Int16Array) -> list[Event]:
        self.total_samples += pcm.size
        data = np.concatenate((self._pending, pcm)) if self._pending.size else pcm
        whole = data.size // self._frame
        events: list[Event] = []
        for i in range(whole):
            events += self._on_frame(data[i * self._frame : (i + 1) * self._frame])
        self._pending = data[whole * self._frame :].copy()
        return events

    def finish(self) -> list[Event]:
        """End of stream (``stop``): finalize a pending utterance."""
        if self._utt is None:
            return []
        if self._pending.size:
            self._utt.append(self._pending)
            self._pending = np.zeros(0, dtype=np.int16)
        return [self._finalize(self.total_samples, "stop")]

    # ------------------------------------------------------------------ internals

    def _on_frame(self, frame: Int16Array) -> list[Event]:
        self._processed += frame.size
        samples = frame.astype(np.float64)
        power = float(np.mean(samples * samples))
        voiced = power >= _VAD_POWER
        if self._utt is None:
            if not voiced:
                self._note_noise(power)
                self._preroll.append(frame)
                return []
            return self._begin(frame, power)
        self._utt.append(frame)
        self._utt_samples += frame.size
        if voiced:
            self._voiced_end = self._utt_samples
            self._silence_run = 0
            self._voiced_power += power
            self._voiced_frames += 1
        else:
            self._silence_run += frame.size
            self._note_noise(power)
            if self._silence_run >= self._early_at and self._early_end != self._voiced_end:
                # The audio the final would decode (up to the last voiced frame
                # and the tail) is complete: decode it now, early in the pause,
                # so the end of the utterance, utterance_end_ms into the silence,
                # is sent at once instead of paying the decode (10-25 ms for a
                # 2 s command). Speech that resumes moves voiced_end, and the
                # result is not used.
                self._early_text = self._decode()
                self._early_end = self._voiced_end
        events: list[Event] = []
        if self._interim_samples and self._utt_samples >= self._next_interim:
            self._next_interim += self._interim_samples
            text = tonecode.decode(np.concatenate(self._utt), self.rate, self._spc, memo=self._memo)
            if text:
                events.append(Interim(text))
        if self._silence_run >= self._end_samples:
            events.append(self._finalize(self._processed, "silence"))
        return events

    def _begin(self, frame: Int16Array, power: float) -> list[Event]:
        self._utt = [*self._preroll, frame]
        self._memo = {}
        self._early_end = -1
        self._preroll.clear()
        self._preroll_samples = sum(f.size for f in self._utt) - frame.size
        self._utt_samples = self._preroll_samples + frame.size
        self._voiced_end = self._utt_samples
        self._silence_run = 0
        self._voiced_power, self._voiced_frames = power, 1
        self._next_interim = self._interim_samples or 0
        offset = (self.total_samples - self._pending.size) / self.rate
        return [SpeechStarted(round(offset, 3))]

    def _note_noise(self, power: float) -> None:
        self._noise_power += power
        self._noise_frames += 1

    def _finalize(self, position: int, cause: Literal["silence", "stop"]) -> FinalTranscript:
        assert self._utt is not None
        at = round(position / self.rate, 4)
        early = self._early_end == self._voiced_end
        decoded = self._early_text if early else self._decode()
        duration = round((self._voiced_end - self._preroll_samples) / self.rate, 3)
        snr = self._snr_db()
        self._utt = None
        self.utterances += 1
        if decoded:
            return FinalTranscript(decoded, CONFIDENCE_TONE, duration, snr, "tone", at, cause)
        scripted = self._script()
        if scripted is not None:
            return FinalTranscript(
                scripted, CONFIDENCE_SCRIPTED, duration, snr, "script", at, cause
            )
        placeholder = f"[speech {duration:.2f} s]"
        return FinalTranscript(
            placeholder, CONFIDENCE_PLACEHOLDER, duration, snr, "placeholder", at, cause
        )

    def _decode(self) -> str | None:
        """``try_decode`` of the utterance up to its last voiced frame and the tail."""
        assert self._utt is not None
        audio = np.concatenate(self._utt)[: self._voiced_end + self._tail]
        return tonecode.try_decode(audio, self.rate, self._spc, memo=self._memo)

    def _snr_db(self) -> float:
        signal = self._voiced_power / max(self._voiced_frames, 1)
        noise = max(self._noise_power / max(self._noise_frames, 1), _NOISE_FLOOR_POWER)
        return round(min(60.0, 10 * math.log10(signal / noise)), 1)

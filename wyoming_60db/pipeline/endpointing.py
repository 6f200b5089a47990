"""When a voice command is over: 60db's end of utterance, and the guard rails around it.

Home Assistant (2026.10+) runs no VAD of its own for an STT service that says
it needs none; the service must then end the turn itself (home-assistant.md
§2). 60db already does: after ``utterance_end_ms`` of trailing silence it
sends the utterance's canonical final (§2.5). :class:`Endpointing` says how
the feed acts on it, and bounds a turn in which 60db never says it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from wyoming_60db.sixtydb import Transcription
from wyoming_60db.sixtydb.limits import VAD_SENSITIVITY_MS, VadSensitivity

DEFAULT_MAX_COMMAND_SECONDS: Final = 15.0
"""Home Assistant's own VAD gives up after 15 s too."""
DEFAULT_NO_SPEECH_SECONDS: Final = 8.0
DEFAULT_REFINE_WAIT_SECONDS: Final = 0.3


@dataclass(frozen=True, slots=True)
class Endpointing:
    """The feed ends the turn itself; the bounds are seconds of the client's audio.

    Audio time rather than wall time: the client streams at real time, so
    the two agree, and a turn is measured the same whatever the network did.
    """

    max_command_seconds: float = DEFAULT_MAX_COMMAND_SECONDS
    """Then the session is finalised, as if the client had stopped."""
    no_speech_seconds: float = DEFAULT_NO_SPEECH_SECONDS
    """Without ``speech_started`` from 60db: then the transcript is empty."""
    refine_wait_seconds: float = DEFAULT_REFINE_WAIT_SECONDS
    """With a ``context``, 60db sends a fast first final, then the refined one
    (§2.5): how long the refined one may take before the first is used."""

    def __post_init__(self) -> None:
        if self.no_speech_seconds <= 0 or self.max_command_seconds <= 0:
            raise ValueError("the endpointing bounds must be positive")
        if self.refine_wait_seconds < 0:
            raise ValueError("refine_wait_seconds must not be negative")


class TurnEnd(StrEnum):
    """Why a turn ended."""

    SPEECH_FINAL = "speech_final"
    """60db's canonical final: the utterance is over."""
    FIRST_FINAL = "first_final"
    """60db's first final, whose refined version did not come in time."""
    MAX_LENGTH = "max_length"
    NO_SPEECH = "no_speech"
    CLIENT = "client"
    """The client ended the audio first (its own VAD, ``audio-stop``)."""


def utterance_end_ms(sensitivity: str | None, default: VadSensitivity = "default") -> int:
    """60db's ``utterance_end_ms`` for a Wyoming/Home Assistant sensitivity name.

    ``None`` means the default; a name that is none of the three raises
    ``ValueError`` naming the valid ones.
    """
    name = default if sensitivity is None else sensitivity
    for known, milliseconds in VAD_SENSITIVITY_MS.items():
        if name == known:
            return milliseconds
    raise ValueError(f"unknown VAD sensitivity {name!r} (valid: {', '.join(VAD_SENSITIVITY_MS)})")


class TurnWatch:
    """Decides, from the audio sent and 60db's results, when the turn is over.

    :attr:`over` resolves with the reason, once. The feed reports each batch
    of audio (:meth:`audio`) and each ``transcription`` (:meth:`transcription`);
    both are synchronous and cheap, because :meth:`audio` runs per chunk.

    A guard needs its bound in audio *and* on the clock since the first
    audio. For a client at real time the two are the same moment; a client
    that uploads a recording faster (Home Assistant's HTTP API, a test
    tool) must not be told "no speech" before 60db had the time to hear it.
    """

    def __init__(self, endpointing: Endpointing, bytes_per_second: int) -> None:
        self._loop = asyncio.get_running_loop()
        self.over: asyncio.Future[TurnEnd] = self._loop.create_future()
        self._bounds = endpointing
        self._bytes_per_second = bytes_per_second
        self._bytes = 0
        self._first_audio: float | None = None
        self.heard_speech = False
        """60db said ``speech_started``, or sent some text."""
        self._first_final: str | None = None
        self._refine_timer: asyncio.TimerHandle | None = None
        self._guard_timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def audio(self, size: int, speech_started: bool) -> None:
        """``size`` more bytes went to 60db; whether its session has heard a voice yet."""
        if self._stopped:
            return
        if self._first_audio is None:
            self._first_audio = self._loop.time()
        self._bytes += size
        self.heard_speech = self.heard_speech or speech_started
        self._check_guards()

    def transcription(self, update: Transcription) -> None:
        """One result from 60db. Empty finals (noise, §2.5) do not end the turn."""
        if self._stopped or not (text := update.text.strip()):
            return
        self.heard_speech = True
        if update.is_canonical:
            self._end(TurnEnd.SPEECH_FINAL)
        elif update.is_final and self._first_final is None:
            self._first_final = text
            self._refine_timer = self._loop.call_later(
                self._bounds.refine_wait_seconds, self._end, TurnEnd.FIRST_FINAL
            )

    def text(self, finals: list[str]) -> str:
        """The turn's text: the canonical finals, and the first final if the turn ended on it."""
        parts = list(finals)
        if self.over.result() is TurnEnd.FIRST_FINAL and self._first_final:
            parts.append(self._first_final)
        return " ".join(parts)

    def stop(self) -> None:
        """No more decisions (the turn ended another way, or the feed closed)."""
        self._stopped = True
        for timer in (self._refine_timer, self._guard_timer):
            if timer is not None:
                timer.cancel()

    def _check_guards(self) -> None:
        seconds = self._bytes / self._bytes_per_second
        if seconds >= self._bounds.max_command_seconds:
            self._guard(self._bounds.max_command_seconds, TurnEnd.MAX_LENGTH)
        elif not self.heard_speech and seconds >= self._bounds.no_speech_seconds:
            self._guard(self._bounds.no_speech_seconds, TurnEnd.NO_SPEECH)

    def _guard(self, seconds: float, reason: TurnEnd) -> None:
        """End for ``reason`` once ``seconds`` have passed since the first audio too."""
        assert self._first_audio is not None
        due = self._first_audio + seconds
        if self._loop.time() >= due:
            self._end(reason)
        elif self._guard_timer is None:
            self._guard_timer = self._loop.call_at(due, self._recheck_guards)

    def _recheck_guards(self) -> None:
        self._guard_timer = None
        if not self._stopped:
            self._check_guards()

    def _end(self, reason: TurnEnd) -> None:
        if not self._stopped and not self.over.done():
            self.over.set_result(reason)
        self.stop()

"""The server's settings: what the command line configures, and its defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final

from .allow import AllowList
from .pipeline.endpointing import (
    DEFAULT_MAX_COMMAND_SECONDS,
    DEFAULT_NO_SPEECH_SECONDS,
    Endpointing,
)
from .sixtydb import DEFAULT_API_URL, ClientConfig, Timeouts
from .sixtydb.catalog import normalize_language
from .sixtydb.limits import SttEncoding, VadSensitivity
from .wire import EventLimits

DEFAULT_URI: Final = "tcp://0.0.0.0:10300"
DEFAULT_USAGE_LOG_INTERVAL: Final = 3600.0
"""An hour: a day of use is at most 24 lines, and an idle server writes none."""

# Home Assistant has no timeouts of its own (home-assistant.md §2), so these
# are what bounds every wait a request can make.
SERVER_TIMEOUTS: Final = Timeouts(
    connect=5.0, rest=5.0, tts_first_audio=10.0, tts_chunk_gap=10.0,
    stt_ready=5.0, stt_finalize=5.0, queue=3.0, close=2.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the command line configures. ``repr`` never shows the key."""

    uri: str = DEFAULT_URI
    api_key: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    languages: tuple[str, ...] = ("auto",)
    voice: str | None = None
    stt_encoding: SttEncoding = "linear"
    tts_sample_rate: int = 16000
    tts_speed: float = 1.0
    zeroconf: str | None = None
    allow: AllowList = field(default_factory=AllowList.default)
    demo: bool = False
    timeouts: Timeouts = SERVER_TIMEOUTS
    limits: EventLimits = field(default_factory=EventLimits)
    catalog_timeout: float = 5.0
    """How long start-up waits for 60db's catalog before serving what is known."""
    warm_connections: int = 1
    drain_seconds: float = 30.0
    """After an ``error``: the longest time to keep reading what the client still sends."""
    drain_idle_seconds: float = 1.0
    """… or until the client has sent nothing for this long."""
    write_timeout: float = 10.0
    """A client that does not read for this long is dropped."""
    shutdown_grace: float = 5.0
    """On SIGTERM, how long requests in flight may run before they are cancelled."""
    stt_concurrency: int | None = None
    """60db's per-account STT limit, if the plan's differs from the documented 8."""
    tts_concurrency: int | None = None
    """… and the TTS limit (documented: 5)."""
    endpointing: bool = True
    """60db ends the turn (``speech_final``) instead of the client's ``audio-stop``."""
    vad_sensitivity: VadSensitivity = "default"
    """For requests that name none: how long a pause ends the command."""
    max_command_seconds: float = DEFAULT_MAX_COMMAND_SECONDS
    """With endpointing: the longest command, in seconds of audio; then it is finalised."""
    no_speech_seconds: float = DEFAULT_NO_SPEECH_SECONDS
    """With endpointing: audio without speech before the transcript is empty."""
    usage_log_interval: float = DEFAULT_USAGE_LOG_INTERVAL
    """Seconds between the INFO lines with the account's totals; 0 is never."""

    @property
    def stt_endpointing(self) -> Endpointing | None:
        """How a transcription ends its turn by itself; None: only on ``audio-stop``."""
        if not self.endpointing:
            return None
        return Endpointing(
            max_command_seconds=self.max_command_seconds,
            no_speech_seconds=self.no_speech_seconds,
        )

    @property
    def default_language(self) -> str:
        """The first configured language, for voices 60db gives none."""
        return next((code for code in self.languages if code != "auto"), "en")

    def client_config(self) -> ClientConfig:
        """The 60db client configuration these settings describe."""
        config = ClientConfig(api_key=self.api_key, api_url=self.api_url, timeouts=self.timeouts)
        if self.stt_concurrency is not None:
            config = dataclasses.replace(config, stt_concurrency=self.stt_concurrency)
        if self.tts_concurrency is not None:
            config = dataclasses.replace(config, tts_concurrency=self.tts_concurrency)
        return config


def normalize_languages(values: list[str]) -> tuple[str, ...]:
    """``en-US,de`` → ``("en", "de")``; nothing → ``("auto",)``."""
    codes: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            code = "auto" if part.lower() == "auto" else normalize_language(part)
            if code and code not in codes:
                codes.append(code)
    return tuple(codes) or ("auto",)

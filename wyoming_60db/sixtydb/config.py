"""Client configuration: where 60db lives, how to authenticate, how long to wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from .limits import STT_CONCURRENCY, TTS_CONCURRENCY

DEFAULT_API_URL: Final = "https://api.60db.ai"
STT_PATH: Final = "/ws/stt"
TTS_PATH: Final = "/ws/tts"
HEALTH_PATH: Final = "/ws/health"

_WS_SCHEMES: Final = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Upper bounds, in seconds, of every network wait the client makes."""

    connect: float = 10.0
    """TCP, TLS, WebSocket upgrade and 60db's authentication handshake."""
    rest: float = 15.0
    """One REST request, including reading the body."""
    tts_first_audio: float = 15.0
    """From a flush to the first audio chunk."""
    tts_chunk_gap: float = 10.0
    """Between two audio chunks, or from the last chunk to the end marker."""
    stt_ready: float = 10.0
    """From ``start`` to ``session_started``/``connected``."""
    stt_finalize: float = 10.0
    """From ``stop`` to the final transcript and ``session_stopped``."""
    queue: float = 5.0
    """How long a request waits for a free slot under 60db's concurrency limits."""
    close: float = 2.0
    """Closing a WebSocket politely before giving up on it."""
    stt_audio_idle: float = 10.0
    """How long a transcription may go without new audio before it is ended.

    A client that opens a request and then falls silent must not hold one of
    the account's eight STT sessions forever."""
    tts_text_idle: float = 30.0
    """How long a streamed synthesis may go without new text before it is ended."""
    warm_max_idle: float = 240.0
    """A pre-warmed connection unused this long is replaced in the background.

    60db documents no idle timeout; a fresh socket is cheaper than a request
    that finds a half-dead one."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything needed to reach one 60db account.

    ``token`` and ``workspace_id`` are the JWT alternative to an API key
    (60db-protocol.md §1.4). ``repr`` never shows a credential.
    """

    api_key: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    workspace_id: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    # 60db's documented per-account limits, counted across REST and WebSocket
    # (§6): the client queues locally rather than hitting them.
    stt_concurrency: int = STT_CONCURRENCY
    tts_concurrency: int = TTS_CONCURRENCY

    def __post_init__(self) -> None:
        scheme = urlsplit(self.api_url).scheme
        if scheme not in _WS_SCHEMES:
            raise ValueError(f"api_url must start with https:// or http://, got {scheme!r}")

    @property
    def rest_base(self) -> str:
        """The REST base URL without a trailing slash (``ws``/``wss`` mapped back)."""
        parts = urlsplit(self.api_url.rstrip("/"))
        scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path, "", ""))

    def websocket_url(self, path: str) -> str:
        """``https://host/base`` → ``wss://host/base/ws/…`` with the auth query."""
        parts = urlsplit(self.rest_base)
        query = urlencode(self.auth_query())
        return urlunsplit((_WS_SCHEMES[parts.scheme], parts.netloc, parts.path + path, query, ""))

    def auth_query(self) -> dict[str, str]:
        """WebSocket authentication is by query parameter only (§1.4)."""
        if self.token:
            return {"token": self.token, "workspace_id": str(self.workspace_id or "")}
        return {"apiKey": self.api_key or ""}

    def auth_headers(self) -> dict[str, str]:
        """REST authentication: ``Authorization: Bearer`` (§1.3)."""
        return {"Authorization": f"Bearer {self.token or self.api_key or ''}"}

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credentials that must never appear in a log line or an error."""
        return tuple(s for s in (self.api_key, self.token) if s)

    def redact(self, text: str) -> str:
        """Replace every credential in ``text`` by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

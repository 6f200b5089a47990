"""60db's WebSocket vocabulary: message names and close codes, named once.

The client core and the emulator both speak in these names, so the two cannot
drift apart. The enums are ``StrEnum``/``IntEnum``: a member *is* its wire
value (``ClientMessage.START == "start"``), so JSON carries the plain string.

What a message is called is fixed; how it is framed is not (60db-protocol.md
§9.2, §9.22: typed ``{"type": name}`` or envelope ``{name: {...}}``), and that
choice stays with the code that reads or writes the frame.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


class ClientMessage(StrEnum):
    """Messages a client sends."""

    # /ws/stt, typed as {"type": ...} (§2.3)
    START = "start"
    AUDIO = "audio"
    CONFIG = "config"
    STOP = "stop"
    TEST = "test"
    # /ws/tts, each the single outer key of its envelope (§3.1, §3.3)
    CREATE_CONTEXT = "create_context"
    SEND_TEXT = "send_text"
    FLUSH_CONTEXT = "flush_context"
    CLOSE_CONTEXT = "close_context"


class ServerMessage(StrEnum):
    """Messages 60db sends."""

    # Both sockets: the login (§1.4, §2.4, §3.4) and errors (§2.6, §3.4)
    CONNECTING = "connecting"
    CONNECTION_ESTABLISHED = "connection_established"
    ERROR = "error"
    # /ws/stt (§2.4, §2.5)
    CONNECTED = "connected"
    SESSION_STARTED = "session_started"
    SPEECH_STARTED = "speech_started"
    TRANSCRIPTION = "transcription"
    LANGUAGE_CHANGED = "language_changed"
    MODE_CHANGED = "mode_changed"
    TEST_RESPONSE = "test_response"
    SESSION_STOPPED = "session_stopped"
    # /ws/tts (§3.4)
    CONTEXT_CREATED = "context_created"
    AUDIO_CHUNK = "audio_chunk"
    FLUSH_COMPLETED = "flush_completed"
    CONTEXT_CLOSED = "context_closed"


STT_CLIENT_MESSAGES: Final = frozenset(
    {
        ClientMessage.START,
        ClientMessage.AUDIO,
        ClientMessage.CONFIG,
        ClientMessage.STOP,
        ClientMessage.TEST,
    }
)
TTS_CLIENT_MESSAGES: Final = frozenset(ClientMessage) - STT_CLIENT_MESSAGES
LOGIN_MESSAGES: Final = frozenset(
    {ServerMessage.CONNECTING, ServerMessage.CONNECTION_ESTABLISHED, ServerMessage.ERROR}
)
"""What either socket may send before a request: the same on STT and TTS."""
TTS_SERVER_MESSAGES: Final = LOGIN_MESSAGES | {
    ServerMessage.CONTEXT_CREATED,
    ServerMessage.AUDIO_CHUNK,
    ServerMessage.FLUSH_COMPLETED,
    ServerMessage.CONTEXT_CLOSED,
}
STT_SERVER_MESSAGES: Final = frozenset(ServerMessage) - TTS_SERVER_MESSAGES | LOGIN_MESSAGES


class CloseCode(IntEnum):
    """The WebSocket close codes 60db (and the emulator) use (RFC 6455 §7.4.1)."""

    NORMAL = 1000
    """After ``session_stopped`` (§2.6), or ``context_closed`` on some servers (§9.6)."""
    GOING_AWAY = 1001
    """The server is shutting down."""
    INVALID_DATA = 1007
    """A malformed or invalid STT message (the emulator's choice; §2.6 names none)."""
    POLICY_VIOLATION = 1008
    """Credentials, an empty wallet or the concurrency limit (§1.4, §2.6, §6)."""
    INTERNAL_ERROR = 1011
    """The server failed."""

"""Local emulator of the 60db speech API (STT/TTS WebSockets, catalog REST).

Faithful to ``docs/60db-protocol.md``; every documented ambiguity that
concerns the WebSockets or the catalog is selectable through
``EmulatorSettings`` so a client can be tested against each variant.
"""

from . import tonecode
from .catalog import DEFAULT_VOICE_ID, Voice
from .recorder import SentFinal, Stats, SttRecord, TtsConnectionRecord, TtsRecord
from .server import Emulator
from .settings import EmulatorSettings, Fault

__all__ = [
    "DEFAULT_VOICE_ID",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "SentFinal",
    "Stats",
    "SttRecord",
    "TtsConnectionRecord",
    "TtsRecord",
    "Voice",
    "tonecode",
]

"""State shared by all connections of one emulator instance."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .limits import ConcurrencyLimiter
from .recorder import Stats, SttRecord, TtsConnectionRecord, TtsRecord
from .settings import EmulatorSettings, Fault

if TYPE_CHECKING:
    from .connection import Connection


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    limiter: ConcurrencyLimiter = field(default_factory=ConcurrencyLimiter)
    stats: Stats = field(default_factory=Stats)
    faults: list[Fault] = field(default_factory=list)
    scripted: deque[str] = field(default_factory=deque)
    stt_sessions: list[SttRecord] = field(default_factory=list)
    tts_contexts: list[TtsRecord] = field(default_factory=list)
    tts_connections: list[TtsConnectionRecord] = field(default_factory=list)
    connections: set[Connection] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def take_fault(self, service: str) -> Fault | None:
        """Pop the oldest pending fault for ``service`` (one-shot)."""
        for i, fault in enumerate(self.faults):
            if fault.matches(service):
                return self.faults.pop(i)
        return None

    def next_script(self) -> str | None:
        return self.scripted.popleft() if self.scripted else None

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
class ArmedFault:
    """A pending ``Fault`` and how many more connections it may fire on (None: all)."""

    fault: Fault
    firings_left: int | None


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    limiter: ConcurrencyLimiter = field(default_factory=ConcurrencyLimiter)
    stats: Stats = field(default_factory=Stats)
    faults: list[ArmedFault] = field(default_factory=list)
    scripted: deque[str] = field(default_factory=deque)
    stt_sessions: list[SttRecord] = field(default_factory=list)
    tts_contexts: list[TtsRecord] = field(default_factory=list)
    tts_connections: list[TtsConnectionRecord] = field(default_factory=list)
    connections: set[Connection] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def arm_fault(self, fault: Fault) -> None:
        self.faults.append(ArmedFault(fault, fault.times))

    def take_fault(self, service: str) -> Fault | None:
        """The oldest pending fault for ``service``; uses up one of its firings."""
        for i, armed in enumerate(self.faults):
            if not armed.fault.matches(service):
                continue
            if armed.firings_left is not None:
                armed.firings_left -= 1
                if armed.firings_left <= 0:
                    del self.faults[i]
            return armed.fault
        return None

    def record_fault(self, service: str, fault: Fault) -> None:
        """Count a fault that actually fired (``Stats.faults_injected``)."""
        self.stats.faults_injected[(service, fault.kind)] += 1

    def next_script(self) -> str | None:
        return self.scripted.popleft() if self.scripted else None

"""What this client has spent: 60db's STT billing summaries, added up (§2.4, §6)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .protocol import Billing


@dataclass(slots=True)
class Usage:
    """Totals since the client was made (``since``, epoch seconds).

    Only STT reports a cost per session (``session_stopped.billing_summary``);
    60db's TTS socket sends no billing message (§6), so TTS is not counted.
    """

    stt_sessions: int = 0
    stt_seconds: float = 0.0
    cost: float = 0.0
    """USD, the sum of ``billing_summary.total_cost``."""
    since: float = field(default_factory=time.time)

    def add(self, billing: Billing) -> None:
        """One STT session's summary; a field 60db left out counts as zero."""
        self.stt_sessions += 1
        self.stt_seconds += billing.total_duration_seconds or 0.0
        self.cost += billing.total_cost or 0.0

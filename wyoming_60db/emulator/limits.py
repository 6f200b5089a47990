"""Per-key concurrency slots (§6: STT 8, TTS 5 per user; no queueing).

What takes a slot is the ``concurrency_counts`` knob: STT sessions / TTS
contexts ("sessions") or authenticated sockets ("connections").
"""

from __future__ import annotations

from collections import Counter


class ConcurrencyLimiter:
    """Counts held slots per (service, credential)."""

    def __init__(self) -> None:
        self._active: Counter[tuple[str, str]] = Counter()

    def try_acquire(self, service: str, identity: str, limit: int) -> bool:
        key = (service, identity)
        if self._active[key] >= limit:
            return False
        self._active[key] += 1
        return True

    def release(self, service: str, identity: str) -> None:
        key = (service, identity)
        if self._active[key] > 0:
            self._active[key] -= 1
        if self._active[key] == 0:
            del self._active[key]

    def active(self, service: str, identity: str) -> int:
        return self._active.get((service, identity), 0)

    def total(self, service: str) -> int:
        """Slots of ``service`` held now, summed over every credential."""
        return sum(n for (svc, _), n in self._active.items() if svc == service)

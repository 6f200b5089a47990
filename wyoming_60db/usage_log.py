"""A periodic INFO line with what the account has spent since the server started.

The client core adds up 60db's billing summaries (``SixtyDbClient.usage``)
and keeps the balance from every handshake (``.account``); this only reports
them, where a user of the server looks: its log. A line is written only when
a total changed since the last one, so an idle server stays quiet.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from .sixtydb import SixtyDbClient

_LOGGER = logging.getLogger(__name__)


class Totals(NamedTuple):
    """What one line reports."""

    stt_sessions: int
    stt_seconds: float
    cost: float
    balance: float | None

    @classmethod
    def of(cls, client: SixtyDbClient) -> Totals:
        usage, account = client.usage, client.account
        balance = None if account is None else account.credit_balance
        return cls(usage.stt_sessions, usage.stt_seconds, usage.cost, balance)

    def text(self) -> str:
        count = self.stt_sessions
        sessions = "1 STT session" if count == 1 else f"{count} STT sessions"
        balance = "unknown" if self.balance is None else f"${self.balance:.2f}"
        return (
            f"60db since start: {sessions}, {self.stt_seconds:.1f} s of audio, "
            f"${self.cost:.4f} spent; credit balance {balance}"
        )


class UsageLog:
    """Every ``interval`` seconds, the totals at INFO if they changed (0: never)."""

    def __init__(self, client: SixtyDbClient, interval: float) -> None:
        self._client = client
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._last = Totals.of(client)
        """What the last line said."""

    def start(self) -> None:
        """Begin the periodic check (idempotent; nothing when the interval is 0).

        Called once start-up has checked the account, whose balance start-up
        logs itself: the first line comes only when something changed.
        """
        if self._task is None and self._interval > 0:
            self._last = Totals.of(self._client)
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop checking, with a last line if the totals changed since the last one."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.log_if_changed()  # what the last period spent is not lost

    def log_if_changed(self) -> bool:
        """Write the line now if anything changed since the last one; whether it did."""
        totals = Totals.of(self._client)
        if totals == self._last:
            return False
        self._last = totals
        _LOGGER.info("%s", totals.text())
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.log_if_changed()

"""Cancelling tasks for certain, on every supported Python.

On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives in
the same loop iteration as the awaited result (CPython gh-86296, fixed in
3.12). The client core avoids ``wait_for``, but libraries below it may not, and
a lost ``cancel()`` would let a request run on after its client left. So the
handler cancels again until the task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

_RECHECK_SECONDS: Final = 0.05


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, whatever it swallows."""
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECHECK_SECONDS)
    for task in every:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning

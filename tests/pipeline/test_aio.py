"""next_or_quiet: silence from a caller's stream, told apart from the stream's own errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wyoming_60db.pipeline.aio import QuietStream, next_or_quiet


async def _raises_timeout() -> AsyncIterator[bytes]:
    raise TimeoutError("the source's own")
    yield b""  # pragma: no cover


async def _silent() -> AsyncIterator[bytes]:
    await asyncio.sleep(5)
    yield b""  # pragma: no cover


async def _two() -> AsyncIterator[bytes]:
    yield b"a"
    yield b"b"


async def test_items_then_none_at_the_end() -> None:
    items = _two()
    assert [await next_or_quiet(items, 1), await next_or_quiet(items, 1)] == [b"a", b"b"]
    assert await next_or_quiet(items, 1) is None


async def test_silence_is_quiet_stream() -> None:
    with pytest.raises(QuietStream, match=r"nothing arrived for 0\.01 s"):
        await next_or_quiet(_silent(), 0.01)


async def test_a_timeout_of_the_stream_itself_passes_through() -> None:
    with pytest.raises(TimeoutError, match="own"):
        await next_or_quiet(_raises_timeout(), 5)

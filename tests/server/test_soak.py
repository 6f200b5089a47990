"""A compressed day (``bench/soak.py``, 25 s here): nothing may fail, leak or stay held."""

from __future__ import annotations

import pytest

from bench.soak import STT_LIMIT, TTS_LIMIT, run_day


@pytest.mark.timeout(120)
async def test_a_compressed_day_loses_nothing() -> None:
    report = await run_day(25.0)
    print("\n".join(report.lines()))  # shown with -s, and in the log of a failure
    assert report.failures == []
    # Every kind of episode happened (the schedule is seeded, so this is stable).
    assert set(report.requests) == {
        "transcription",
        "streamed answer",
        "announcement",
        "answer cut short",
    }
    assert report.requests["transcription"] >= 10  # the burst alone brings 8
    assert report.slots_free == (STT_LIMIT, TTS_LIMIT)
    # One warm socket per service, and nothing else, is left at 60db.
    assert report.emulator_sockets_left == {"stt": 1, "tts": 1}
    assert report.fds[1] <= report.fds[0], "file descriptors leaked"

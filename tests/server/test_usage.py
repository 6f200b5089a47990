"""The account in view: totals in ``info``'s description and in a periodic INFO line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.server.conftest import (
    RunningServer,
    describe,
    eventually,
    ha_turn,
    pcm_of,
    running_server,
    started_sessions,
)
from wyoming_60db.emulator import Emulator
from wyoming_60db.info import asr_description
from wyoming_60db.sixtydb import Account, Usage

USAGE_LOGGER = "wyoming_60db.usage_log"


def usage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == USAGE_LOGGER and record.levelno == logging.INFO
    ]


def test_description_says_only_what_is_known() -> None:
    assert asr_description(None, None) == "60db cloud speech-to-text, streaming"
    usage = Usage(stt_sessions=3, stt_seconds=4.0, cost=0.00123)
    assert asr_description(usage, None) == (
        "60db cloud speech-to-text, streaming; spent since start $0.0012"
    )
    account = Account(user_id="1", credit_balance=None, workspace=None)
    assert asr_description(usage, account).endswith("$0.0012")
    account = Account(user_id="1", credit_balance=12.345, workspace=None)
    assert asr_description(None, account) == (
        "60db cloud speech-to-text, streaming; balance $12.35"
    )


async def test_info_description_follows_the_accounts_totals(
    server: RunningServer, emulator: Emulator
) -> None:
    client = server.backend.client
    assert client is not None
    before = (await describe(server)).asr[0].description
    assert before == (
        "60db cloud speech-to-text, streaming; spent since start $0.0000, balance $9.97"
    )
    emulator.settings.stt_cost_per_second = 0.01  # a cost that shows in 4 decimals
    emulator.settings.credit_balance = 9.5  # what the request's handshake reports
    await ha_turn(server, pcm_of("lights on", 1.0), then_stop=False)
    await eventually(lambda: client.usage.stt_sessions == 1, "the billing", 2.0)
    (session,) = started_sessions(emulator)
    assert session.billing is not None
    cost = session.billing["total_cost"]
    assert cost > 0.0001
    after = (await describe(server)).asr[0].description
    assert after == (
        f"60db cloud speech-to-text, streaming; spent since start ${cost:.4f}, balance $9.50"
    )


async def test_usage_line_when_the_totals_changed(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=USAGE_LOGGER)
    emulator.settings.stt_cost_per_second = 0.01
    interval = 0.2
    async with running_server(emulator, usage_log_interval=interval) as server:
        client = server.backend.client
        assert client is not None
        await asyncio.sleep(interval * 3)
        assert usage_lines(caplog) == []  # nothing changed since start: nothing said
        await ha_turn(server, pcm_of("lights on", 1.0), then_stop=False)
        await eventually(lambda: usage_lines(caplog), "the usage line", 2.0)
        (line,) = usage_lines(caplog)
        usage = client.usage
        assert line == (
            f"60db since start: 1 STT session, {usage.stt_seconds:.1f} s of audio, "
            f"${usage.cost:.4f} spent; credit balance $9.97"
        )
        await asyncio.sleep(interval * 3)
        assert len(usage_lines(caplog)) == 1  # unchanged: no repeat
        await ha_turn(server, pcm_of("lights off", 1.0), then_stop=False)
        await eventually(lambda: len(usage_lines(caplog)) == 2, "the second line", 2.0)
    assert usage_lines(caplog)[1].startswith("60db since start: 2 STT sessions, ")
    assert len(usage_lines(caplog)) == 2  # shutdown had nothing new to say


async def test_the_last_totals_are_logged_at_shutdown(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=USAGE_LOGGER)
    async with running_server(emulator, usage_log_interval=3600.0) as server:
        await ha_turn(server, pcm_of("lights on", 0.3))
        assert usage_lines(caplog) == []
    (line,) = usage_lines(caplog)
    assert line.startswith("60db since start: 1 STT session, ")


async def test_usage_log_off(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=USAGE_LOGGER)
    async with running_server(emulator, usage_log_interval=0.0) as server:
        await ha_turn(server, pcm_of("lights on", 0.3))
        assert server.backend.usage_log is not None
    assert usage_lines(caplog) == []

"""What the client tells about the account: balance from every handshake, spend from billing."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import eventually, make_client
from tests.sixtydb.test_stt import PHRASE, speech, started, transcribe
from wyoming_60db.emulator import Emulator
from wyoming_60db.sixtydb import SixtyDbClient, SttOptions, Usage
from wyoming_60db.sixtydb.protocol import Billing


async def test_an_stt_handshake_updates_the_balance_and_tells_listeners(
    emulator: Emulator,
) -> None:
    emulator.settings.credit_balance = 4.25
    async with make_client(emulator, api_url=emulator.base_url) as client:
        changes: list[float | None] = []
        remove = client.add_listener(
            lambda: changes.append(client.account.credit_balance if client.account else None)
        )
        await transcribe(client, speech(PHRASE))
        assert client.account is not None
        assert client.account.credit_balance == 4.25
        assert changes[0] == 4.25
        # Spent: one more notification, with 60db's bill in the totals.
        assert client.usage.stt_sessions == 1
        billing = started(emulator)[0].billing
        assert billing is not None
        assert client.usage.cost == pytest.approx(billing["total_cost"])
        assert len(changes) == 2

        emulator.settings.credit_balance = 4.0  # 60db charged the wallet meanwhile
        remove()
        await transcribe(client, speech(PHRASE))
        assert client.account.credit_balance == 4.0
        assert len(changes) == 2  # removed: not called again


async def test_a_broken_listener_does_not_break_the_request(client: SixtyDbClient) -> None:
    def broken() -> None:
        raise RuntimeError("listener bug")

    client.add_listener(broken)
    result = await transcribe(client, speech(PHRASE))
    assert result.text == PHRASE


async def test_a_session_stopped_in_the_background_is_billed_and_released(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    session = client.stt_session(SttOptions())
    session.start()
    await session.wait_ready()
    await session.send_audio(speech(PHRASE))
    await eventually(lambda: session.speech_started, "60db's speech_started")

    async def caller_that_hangs_up() -> None:
        client.stop_in_background(session)
        await asyncio.sleep(10)

    caller = asyncio.create_task(caller_that_hangs_up())
    await asyncio.sleep(0)
    caller.cancel()  # the caller goes away: the stop is the client's, it goes on
    await eventually(lambda: client.usage.stt_sessions == 1, "the billing summary")
    assert started(emulator)[0].ended == "stopped"
    await eventually(lambda: emulator.active_slots("stt") == 0, "the slot")
    assert client.free_slots("stt") == client.config.stt_concurrency


async def test_closing_the_client_ends_background_stops(emulator: Emulator) -> None:
    emulator.settings.finalize_latency = 5.0  # 60db is slow to confirm
    client = make_client(emulator)
    session = client.stt_session(SttOptions())
    session.start()
    await session.wait_ready()
    client.stop_in_background(session)
    async with asyncio.timeout(3):
        await client.close()
    assert client.usage.stt_sessions == 0  # no summary: the client went away first


def test_usage_adds_what_60db_reports() -> None:
    usage = Usage()
    usage.add(Billing(total_duration_seconds=2.5, total_cost=0.0001))
    usage.add(Billing(total_duration_seconds=None, total_cost=None))
    assert (usage.stt_sessions, usage.stt_seconds, usage.cost) == (2, 2.5, 0.0001)

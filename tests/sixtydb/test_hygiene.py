"""Nothing leaks: no sockets after a failure, no key in any text a user can see."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest

from tests.conftest import TEST_KEY, make_client
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    SixtyDbClient,
    SixtyDbError,
    SttOptions,
    TtsOptions,
)


async def _speak(client: SixtyDbClient) -> None:
    async for _ in client.synthesize("Hello there.", TtsOptions(voice_id=DEFAULT_VOICE_ID)):
        pass


async def _listen(client: SixtyDbClient) -> None:
    async with client.stt_session(SttOptions(languages=["en"])) as session:
        await session.send_audio(bytes(3200))
        await session.stop()


async def _until_closed(emulator: Emulator) -> None:
    async with asyncio.timeout(5):
        while emulator.open_connections:  # noqa: ASYNC110 - polling a plain counter
            await asyncio.sleep(0.01)


SCENARIOS = [
    ("wrong key", {"api_key": "sk_live_not_this_one"}, None),
    ("no credits", {"credit_balance": 0}, None),
    ("stt drop", {}, Fault(service="stt", kind="drop", after_messages=3)),
    ("tts drop", {}, Fault(service="tts", kind="drop", after_messages=4)),
    ("garbage", {}, Fault(service="any", kind="garbage", after_messages=2)),
    ("error frame", {}, Fault(service="any", kind="error", after_messages=2, message=TEST_KEY)),
    ("stall", {}, Fault(service="any", kind="stall", after_messages=2)),
]


@pytest.mark.parametrize(("name", "settings", "fault"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_failures_leave_no_socket_and_no_key(
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    name: str,
    settings: dict[str, object],
    fault: Fault | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    for key, value in settings.items():
        setattr(emulator.settings, key, value)
    if fault is not None:
        emulator.inject_fault(fault)
    failures: list[SixtyDbError] = []
    async with make_client(emulator) as client:
        for request in (_listen, _speak):
            try:
                async with asyncio.timeout(10):
                    await request(client)
            except SixtyDbError as err:
                failures.append(err)
    assert failures, f"{name}: expected at least one typed error"
    await _until_closed(emulator)
    client_logs = [
        r.getMessage() for r in caplog.records if not r.name.startswith("wyoming_60db.emulator")
    ]
    texts = client_logs + ["".join(traceback.format_exception(err)) + repr(err) for err in failures]
    assert all(TEST_KEY not in text for text in texts)
    if fault is not None and fault.kind == "error":
        # 60db's own error text reaches the user, with the key blanked out.
        assert any("***" in str(err) for err in failures)


async def test_a_healthy_client_closes_its_warm_connections(emulator: Emulator) -> None:
    async with make_client(emulator) as client:
        client.prewarm()
        await _speak(client)
        await _listen(client)
        assert emulator.open_connections >= 1
    await _until_closed(emulator)

"""The event protocol over a real loopback socket: parsing, the lean audio path, back-pressure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize

from tests.conftest import eventually
from wyoming_60db.event_protocol import QUEUE_HIGH, EventProtocol
from wyoming_60db.wire import MAX_HEADER_BYTES, EventLimits, MalformedEvent, RawEvent

WAIT = 10.0


def wire(event: Event) -> bytes:
    """``event`` as wyoming's own writer puts it on the wire (data in its own section)."""
    header: dict[str, Any] = {"type": event.type, "version": "1.5.4"}
    data = json.dumps(event.data).encode() if event.data else b""
    if data:
        header["data_length"] = len(data)
    if event.payload:
        header["payload_length"] = len(event.payload)
    return json.dumps(header).encode() + b"\n" + data + (event.payload or b"")


def chunk(payload: bytes) -> Event:
    return AudioChunk(16000, 2, 1, payload).event()


EVENTS = [
    Describe().event(),
    AudioStart(16000, 2, 1).event(),
    chunk(b"\x01\x02" * 5),
    chunk(b"\n\n{}\n"),  # a payload that looks like the start of a header
    AudioStop().event(),
    Synthesize(text='Grüße, "quoted"\n').event(),
]


@dataclass
class Loopback:
    events: EventProtocol
    client: asyncio.StreamWriter
    server_writer: asyncio.StreamWriter

    async def send(self, raw: bytes) -> None:
        self.client.write(raw)
        await self.client.drain()

    async def send_apart(self, *pieces: bytes) -> None:
        """Each piece in its own read on the server side."""
        async with asyncio.timeout(WAIT):
            for piece in pieces:
                reads = self.events.activity
                await self.send(piece)
                while self.events.activity == reads:  # noqa: ASYNC110 - a counter, polled
                    await asyncio.sleep(0.001)

    async def hang_up(self) -> None:
        self.client.close()
        await self.client.wait_closed()

    async def all_events(self) -> list[Event]:
        """Every event until the end of the stream."""
        events = []
        async with asyncio.timeout(WAIT):
            while (raw := await self.events.next_event()) is not None:
                events.append(raw.event())
        return events


@asynccontextmanager
async def loopback(limits: EventLimits | None = None) -> AsyncIterator[Loopback]:
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[tuple[EventProtocol, asyncio.StreamWriter]] = loop.create_future()
    server = await loop.create_server(
        lambda: EventProtocol(limits or EventLimits(), lambda *pair: opened.set_result(pair)),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(WAIT):
            _, client = await asyncio.open_connection("127.0.0.1", port)
            events, server_writer = await opened
        try:
            yield Loopback(events, client, server_writer)
        finally:
            client.close()
            server_writer.close()
    finally:
        server.close()


RAW = b"".join(wire(event) for event in EVENTS)


async def test_events_split_at_every_byte_boundary() -> None:
    for split in range(1, len(RAW)):
        async with loopback() as link:
            await link.send_apart(RAW[:split], RAW[split:])
            await link.hang_up()
            assert await link.all_events() == EVENTS, f"split at byte {split}"


async def test_events_arriving_one_byte_at_a_time() -> None:
    async with loopback() as link:
        await link.send_apart(*(RAW[i : i + 1] for i in range(len(RAW))))
        await link.hang_up()
        assert link.events.activity >= len(RAW)  # really one read per byte
        assert await link.all_events() == EVENTS


async def test_several_events_in_one_read() -> None:
    async with loopback() as link:
        await link.send_apart(RAW)
        await link.hang_up()
        assert await link.all_events() == EVENTS
        assert link.events.activity <= 2  # the events and the end, not one read each


async def test_data_in_the_header_and_in_its_own_section_are_merged() -> None:
    raw = b'{"type": "x", "data": {"a": 1, "b": 1}, "data_length": 8}\n{"b": 2}'
    async with loopback() as link:
        await link.send(raw)
        await link.hang_up()
        assert await link.all_events() == [Event("x", {"a": 1, "b": 2})]


async def test_a_last_header_without_a_line_end_still_counts() -> None:
    async with loopback() as link:
        await link.send(b'{"type": "describe"}')
        await link.hang_up()
        assert await link.all_events() == [Describe().event()]


@pytest.mark.parametrize(
    "cut",
    [
        b'{"type": "audio-chunk", "payload_length": 10}\n12345',
        b'{"type": "x", "data_length": 9}\n{"a"',
    ],
)
async def test_hang_up_in_the_middle_of_an_event(cut: bytes) -> None:
    async with loopback() as link:
        await link.send(wire(Describe().event()) + cut)
        await link.hang_up()
        assert await link.all_events() == [Describe().event()]
        assert await link.events.next_event() is None  # and it stays ended


async def malformed(raw: bytes, limits: EventLimits | None = None) -> tuple[list[Event], str]:
    """The events before the error, and the error's code."""
    async with loopback(limits) as link:
        await link.send(wire(Describe().event()) + raw)
        before = [(await link.events.next_event())]
        with pytest.raises(MalformedEvent) as error:
            async with asyncio.timeout(WAIT):
                await link.events.next_event()
        assert await link.events.next_event() is None  # nothing is read after it
        return [raw_event.event() for raw_event in before if raw_event], error.value.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"this is not json\n", "malformed_event"),
        (b"\n", "malformed_event"),
        (b'{"data": {}}\n', "malformed_event"),
        (b'["a list"]\n', "malformed_event"),
        (b'{"type": "describe", "data": 7}\n', "malformed_event"),
        (b'{"type": "x", "data_length": -1}\n', "malformed_event"),
        (b'{"type": "x", "data_length": true}\n', "malformed_event"),
        (b'{"type": "x", "data_length": 5}\nnope!', "malformed_event"),
        (b'{"type": "x", "data_length": 3}\n[1]', "malformed_event"),
        (b'{"type": "x", "payload_length": 5}\n', "payload_too_large"),
        (b'{"type": "x", "data_length": 11}\n', "payload_too_large"),
    ],
)
async def test_garbage_and_limits(raw: bytes, code: str) -> None:
    limits = EventLimits(max_data_bytes=10, max_payload_bytes=4)
    assert await malformed(raw, limits) == ([Describe().event()], code)


async def test_a_declared_500_mb_payload_is_refused_at_its_header() -> None:
    header = b'{"type": "audio-chunk", "payload_length": 500000000}\n'
    assert await malformed(header) == ([Describe().event()], "payload_too_large")


async def test_a_2_mb_header_line_is_refused_without_buffering_it() -> None:
    async with loopback() as link:
        sending = asyncio.create_task(link.send(b'{"type": "describe", "x": "' + b"y" * 2_000_000))
        try:
            with pytest.raises(MalformedEvent) as error:
                async with asyncio.timeout(WAIT):
                    await link.events.next_event()
            assert error.value.code == "payload_too_large"
            assert link.events.buffered < MAX_HEADER_BYTES + 512 * 1024
            await link.events.drain(1.0, 0.2)  # the rest is read and thrown away
            assert link.events.buffered < MAX_HEADER_BYTES + 512 * 1024
        finally:
            sending.cancel()


async def test_a_header_line_of_64_kib_is_still_read() -> None:
    padding = b"y" * (MAX_HEADER_BYTES - 40)
    async with loopback() as link:
        await link.send(b'{"type": "describe", "x": "' + padding + b'"}\n')
        await link.hang_up()
        (event,) = await link.all_events()
        assert event.type == "describe"


# --------------------------------------------------------------------------- the lean path


@dataclass
class Router:
    """Routes events (``transcribe`` slowly), takes chunks on the lean path; logs both in order."""

    link: Loopback
    log: list[tuple[str, bytes | None]] = field(default_factory=list)
    routing_delay: float = 0.0

    def lean(self, data: dict[str, Any], payload: bytes | None) -> bool:
        self.log.append(("lean", payload))
        return True

    async def route_all(self) -> None:
        async with asyncio.timeout(WAIT):
            while (raw := await self.link.events.next_event()) is not None:
                self.log.append((raw.type, raw.payload))
                if raw.type == "transcribe":
                    await asyncio.sleep(self.routing_delay)


async def test_chunks_take_the_lean_path_and_never_overtake_an_earlier_event() -> None:
    async with loopback() as link:
        router = Router(link, routing_delay=0.05)
        link.events.lean_audio = router.lean
        routing = asyncio.create_task(router.route_all())
        # While `transcribe` is being routed (50 ms), chunks arrive: they must wait.
        await link.send_apart(wire(Event("transcribe")), wire(chunk(b"1")), wire(chunk(b"2")))
        await asyncio.sleep(0.1)  # routing is idle again: chunks go the lean way
        await link.send_apart(wire(chunk(b"3")), wire(chunk(b"4")) + wire(AudioStop().event()))
        await asyncio.sleep(0.1)
        await link.send_apart(wire(chunk(b"5")))
        await link.hang_up()
        await routing
    assert router.log == [
        ("transcribe", None),
        ("audio-chunk", b"1"),
        ("audio-chunk", b"2"),
        ("lean", b"3"),
        ("lean", b"4"),
        ("audio-stop", None),
        ("lean", b"5"),
    ]


async def test_a_declined_chunk_is_routed_in_order() -> None:
    async with loopback() as link:
        router = Router(link)
        link.events.lean_audio = lambda data, payload: (
            payload != b"2" and router.lean(data, payload)
        )
        routing = asyncio.create_task(router.route_all())
        await eventually(lambda: link.events.waiting == 0, "routing to wait")
        for payload in (b"1", b"2", b"3"):
            await link.send_apart(wire(chunk(payload)))
            await asyncio.sleep(0.02)
        await link.hang_up()
        await routing
    assert router.log == [("lean", b"1"), ("audio-chunk", b"2"), ("lean", b"3")]


async def test_back_pressure_when_routing_falls_behind() -> None:
    count = 20 * QUEUE_HIGH
    raw = b"".join(wire(chunk(index.to_bytes(4, "big"))) for index in range(count))
    async with loopback() as link:
        sending = asyncio.create_task(link.send(raw))
        await eventually(lambda: link.events.waiting >= QUEUE_HIGH, "the queue to fill")
        await asyncio.sleep(0.2)  # routing does nothing: reading must have stopped
        transport = link.server_writer.transport
        assert isinstance(transport, asyncio.Transport)
        assert not transport.is_reading()
        assert link.events.waiting == QUEUE_HIGH
        received: list[RawEvent] = []
        async with asyncio.timeout(WAIT):
            while len(received) < count:
                raw_event = await link.events.next_event()
                assert raw_event is not None
                received.append(raw_event)
            await sending
        assert transport.is_reading()
    assert [int.from_bytes(e.payload or b"", "big") for e in received] == list(range(count))


async def test_drain_ends_when_the_client_hangs_up_or_goes_quiet() -> None:
    async with loopback() as link:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await link.send(b"garbage\n" + RAW)
        with pytest.raises(MalformedEvent):
            await link.events.next_event()
        draining = asyncio.create_task(link.events.drain(5.0, 1.0))
        await link.send_apart(RAW, RAW)  # read and discarded
        await link.hang_up()
        await asyncio.wait_for(draining, WAIT)
        assert loop.time() - started < 1.0  # the hang-up ended it, not the idle bound
    async with loopback() as link:
        started = loop.time()
        await link.events.drain(5.0, 0.2)  # a client that neither sends nor closes
        assert 0.2 <= loop.time() - started < 1.0


async def test_repeated_headers_and_data_sections_are_still_read_exactly() -> None:
    """Identical header lines and data sections are not decoded twice, yet never confused."""
    rates = [16000, 16001, 16000, 16000]  # data sections of one length, different content
    sent = [AudioChunk(rate, 2, 1, bytes([index]) * 4).event() for index, rate in enumerate(rates)]
    async with loopback() as link:
        await link.send_apart(*(wire(event) for event in sent))
        await link.hang_up()
        received = await link.all_events()
    assert received == sent
    received[0].data["rate"] = 8000  # a consumer that changes its event's data
    assert received[2].data["rate"] == received[3].data["rate"] == 16000
    assert len({id(event.data) for event in received}) == len(received)

"""The Wyoming wire: reading events with bounds, and errors that become ``error`` events.

``wyoming.event.async_read_event`` trusts the peer: it reads whatever
``data_length``/``payload_length`` announce, turns bad JSON into a silent
disconnect and lets a header without ``type`` crash the handler. The server is
reachable by anything on the network, so it reads events itself, with limits,
and answers a broken event with an ``error`` event that says what was wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeVar

from wyoming.event import Event

_Decoded = TypeVar("_Decoded")
# Fields wyoming's audio events read as integers; a string there is the
# client's mistake, and must not surface later as our own TypeError.
_AUDIO_FORMAT_FIELDS: Final = ("rate", "width", "channels")

# An audio chunk of 1 MiB is 32 s of HA's 16 kHz mono audio; HA sends 320 bytes.
MAX_PAYLOAD_BYTES: Final = 1024 * 1024
# Text to speak travels in `data`; 60db's whole-request limit is 100,000 characters.
MAX_DATA_BYTES: Final = 1024 * 1024
# The header line is JSON of a few fields (asyncio's StreamReader limit, as before).
MAX_HEADER_BYTES: Final = 64 * 1024


class RequestError(Exception):
    """A request that cannot be served; the handler sends ``error(text, code)``."""

    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class MalformedEvent(RequestError):
    """Bytes that are not a Wyoming event; the stream cannot be followed further."""

    def __init__(self, text: str, code: str = "malformed_event") -> None:
        super().__init__(text, code)


def decode(from_event: Callable[[Event], _Decoded], event: Event) -> _Decoded:
    """``Transcribe.from_event(event)`` and the like, for an event from the client.

    A missing or mistyped field is the client's fault (``malformed_event``);
    an exception anywhere else in the handler is a bug of ours.
    """
    for name in _AUDIO_FORMAT_FIELDS:
        value = event.data.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise MalformedEvent(f"{event.type}: {name} is not a whole number")
    try:
        return from_event(event)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MalformedEvent(f"{event.type}: malformed ({type(err).__name__})") from None


@dataclass(frozen=True, slots=True)
class EventLimits:
    """Largest ``data`` and payload sections the server reads."""

    max_data_bytes: int = MAX_DATA_BYTES
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


class RawEvent(NamedTuple):
    """One event as read: cheaper than ``wyoming.event.Event`` for the audio path."""

    type: str
    data: dict[str, Any]
    payload: bytes | None

    def event(self) -> Event:
        return Event(type=self.type, data=self.data, payload=self.payload)


class _Header(NamedTuple):
    type: str
    data: dict[str, Any]
    data_length: int
    payload_length: int


async def read_event(reader: asyncio.StreamReader, limits: EventLimits) -> Event | None:
    """The next event, or None at the end of the stream.

    Raises :class:`MalformedEvent` for anything that is not a well-formed event
    within ``limits``; the connection must then be closed, since the position
    of the next event is unknown.
    """
    try:
        line = await reader.readline()
    except ValueError:  # asyncio's LimitOverrunError: a header line above 64 KiB
        raise MalformedEvent("event header is too long", "payload_too_large") from None
    except (ConnectionError, OSError):
        return None
    if not line:
        return None
    header = _header(line, limits)
    data = header.data
    try:
        if header.data_length:
            data = _merged(data, await reader.readexactly(header.data_length))
        payload_length = header.payload_length
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the peer hung up in the middle of an event
    except (ConnectionError, OSError):
        return None
    return Event(type=header.type, data=data, payload=payload)


class EventParser:
    """Events from bytes as they arrive: :func:`read_event`'s bounds and errors, no awaiting.

    For a protocol's ``data_received``: ``feed`` what arrived, then take
    ``next_event()`` until it returns None (more bytes needed). A header line
    longer than ``MAX_HEADER_BYTES`` is refused as soon as that many bytes are
    buffered without a line end, and a declared section above ``limits`` at
    its header, before any of it is read.
    """

    def __init__(self, limits: EventLimits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._start = 0  # where the unread bytes begin
        self._scanned = 0  # how far the current header line was searched for its end
        self._header: _Header | None = None  # read; its data and payload are not complete yet
        # A client repeats the same header line and data section for every
        # audio chunk; comparing bytes is far cheaper than decoding JSON again.
        self._last_line = b""
        self._last_header: _Header | None = None
        self._last_data = b""
        self._last_data_object: dict[str, Any] = {}

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as part of an event."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        if self._start:
            del self._buffer[: self._start]  # bytearray drops a prefix without copying
            self._scanned -= self._start
            self._start = 0
        self._buffer += data

    def next_event(self) -> RawEvent | None:
        """The next complete event, or None until more bytes arrive."""
        header = self._header
        if header is None:
            header = self._next_header()
            if header is None:
                return None
        start = self._start
        body_end = start + header.data_length + header.payload_length
        if len(self._buffer) < body_end:
            self._header = header
            return None
        self._header = None
        self._start = self._scanned = body_end
        payload_start = start + header.data_length
        if header.data_length:
            data = {**header.data, **self._data_section(start, payload_start)}
        else:
            data = header.data.copy()  # the header may be reused: never share its dict
        payload = bytes(self._buffer[payload_start:body_end]) if header.payload_length else None
        return RawEvent(header.type, data, payload)

    def end(self) -> RawEvent | None:
        """At the end of the stream: a last header without its line end is still an event.

        (``StreamReader.readline`` returns such a line too.) An event cut off
        in its data or payload is dropped: the peer hung up in the middle.
        """
        if self._header is not None or self._start == len(self._buffer):
            return None
        header = _header(bytes(self._buffer[self._start :]), self._limits)
        self._start = len(self._buffer)
        if header.data_length or header.payload_length:
            return None
        return RawEvent(header.type, header.data, None)

    def _data_section(self, start: int, end: int) -> dict[str, Any]:
        last = self._last_data
        if end - start == len(last) and self._buffer.startswith(last, start):
            return self._last_data_object  # merged into a new dict: safe to reuse
        raw = bytes(self._buffer[start:end])
        data = _json_object(raw, "event data")
        self._last_data, self._last_data_object = raw, data
        return data

    def _next_header(self) -> _Header | None:
        buffer = self._buffer
        last = self._last_line
        if self._last_header is not None and buffer.startswith(last, self._start):
            self._start = self._scanned = self._start + len(last)
            return self._last_header
        line_end = buffer.find(b"\n", max(self._scanned, self._start))
        if line_end < 0:
            self._scanned = len(buffer)
            if len(buffer) - self._start > MAX_HEADER_BYTES:
                raise MalformedEvent("event header is too long", "payload_too_large")
            return None
        if line_end - self._start > MAX_HEADER_BYTES:
            raise MalformedEvent("event header is too long", "payload_too_large")
        line = bytes(buffer[self._start : line_end + 1])
        self._start = self._scanned = line_end + 1
        header = _header(line, self._limits)
        self._last_line, self._last_header = line, header
        return header


def _header(line: bytes | bytearray, limits: EventLimits) -> _Header:
    header = _json_object(line, "event header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("event header has no type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedEvent(f"{event_type}: data is not an object")
    data_length = _length(header, "data_length", limits.max_data_bytes, event_type)
    payload_length = _length(header, "payload_length", limits.max_payload_bytes, event_type)
    return _Header(event_type, data, data_length, payload_length)


def _merged(data: dict[str, Any], raw: bytes | bytearray) -> dict[str, Any]:
    return {**data, **_json_object(raw, "event data")}


def _json_object(raw: bytes | bytearray, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEvent(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} is not a JSON object")
    return value


def _length(header: dict[str, Any], field: str, limit: int, event_type: str) -> int:
    value = header.get(field)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedEvent(f"{event_type}: {field} is not a byte count")
    if value > limit:
        raise MalformedEvent(
            f"{event_type}: {field} {value} exceeds the limit of {limit} bytes",
            "payload_too_large",
        )
    return value

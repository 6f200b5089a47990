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
from typing import Any, Final, TypeVar

from wyoming.event import Event

_Decoded = TypeVar("_Decoded")
# Fields wyoming's audio events read as integers; a string there is the
# client's mistake, and must not surface later as our own TypeError.
_AUDIO_FORMAT_FIELDS: Final = ("rate", "width", "channels")

# An audio chunk of 1 MiB is 32 s of HA's 16 kHz mono audio; HA sends 320 bytes.
MAX_PAYLOAD_BYTES: Final = 1024 * 1024
# Text to speak travels in `data`; 60db's whole-request limit is 100,000 characters.
MAX_DATA_BYTES: Final = 1024 * 1024


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
    header = _json_object(line, "event header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEvent("event header has no type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedEvent(f"{event_type}: data is not an object")
    data_length = _length(header, "data_length", limits.max_data_bytes, event_type)
    payload_length = _length(header, "payload_length", limits.max_payload_bytes, event_type)
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), "event data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the peer hung up in the middle of an event
    except (ConnectionError, OSError):
        return None
    return Event(type=event_type, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
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

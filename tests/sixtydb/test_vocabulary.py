"""The client core and the emulator speak one vocabulary (wyoming_60db/sixtydb/vocabulary.py)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.sixtydb.test_stt import speech, transcribe
from wyoming_60db.emulator import DEFAULT_VOICE_ID, Emulator, EmulatorSettings
from wyoming_60db.sixtydb import SttOptions, TtsOptions
from wyoming_60db.sixtydb.vocabulary import (
    STT_CLIENT_MESSAGES,
    STT_SERVER_MESSAGES,
    TTS_CLIENT_MESSAGES,
    TTS_SERVER_MESSAGES,
    ClientMessage,
    CloseCode,
    ServerMessage,
)

PACKAGE = Path(__file__).parents[2] / "wyoming_60db"
SPEAKERS = sorted(
    [*(PACKAGE / "emulator").glob("*.py")]
    + [
        PACKAGE / "sixtydb" / f"{name}.py"
        for name in ("protocol", "stt", "tts", "channel", "client")
    ]
)
NAMES = {member.value for member in (*ClientMessage, *ServerMessage)}
# Functions whose string argument names a message.
_NAME_TAKERS = {"body", "context_id", "kind", "_ack"}


def test_the_enums_are_their_wire_values() -> None:
    assert ClientMessage.CREATE_CONTEXT == "create_context"
    assert ServerMessage.CONNECTION_ESTABLISHED == "connection_established"
    assert CloseCode.POLICY_VIOLATION == 1008
    assert set(ClientMessage) == STT_CLIENT_MESSAGES | TTS_CLIENT_MESSAGES
    assert set(ServerMessage) == STT_SERVER_MESSAGES | TTS_SERVER_MESSAGES
    assert ServerMessage.AUDIO_CHUNK not in STT_SERVER_MESSAGES
    assert ServerMessage.TRANSCRIPTION not in TTS_SERVER_MESSAGES


def _message_name_literals(path: Path) -> list[str]:
    """String literals used as a message's name rather than through the enums."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [key for key in node.keys if isinstance(key, ast.Constant)]
            if len(node.keys) == 1:
                found += keys  # an envelope: {"<name>": {...}}
            elif keys and all(key.value in NAMES for key in keys):
                found += keys  # a dispatch table
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "type":
                    found += [value] if isinstance(value, ast.Constant) else []
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            subject = " ".join(ast.unparse(o) for o in operands if not isinstance(o, ast.Constant))
            # `name == ...`, `kind(message) == ...`, `msg["type"] in ...`: not `fault.kind`.
            if any(word in subject for word in ("name", "kind(", "type")):
                for operand in operands:
                    found += _constants(operand)
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func).rsplit(".", 1)[-1]
            if called in _NAME_TAKERS:
                found += [arg for arg in node.args if isinstance(arg, ast.Constant)]
    return [
        f"{path.name}:{node.lineno} {node.value!r}"
        for node in sorted(found, key=lambda node: (node.lineno, node.col_offset))
        if isinstance(node.value, str) and node.value in NAMES
    ]


def _constants(node: ast.expr) -> list[ast.Constant]:
    if isinstance(node, ast.Constant):
        return [node]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [element for element in node.elts if isinstance(element, ast.Constant)]
    return []


def test_the_check_finds_bare_names() -> None:
    sample = Path(__file__).with_name("bare_names_sample.py.txt")
    sample.write_text(
        'x = {"type": "start"}\ny = {"flush_context": {}}\n'
        'if name == "context_created": pass\nbody(message, "audio_chunk")\n'
        'z = {"type": "error", "error": "text"}\n'
    )
    try:
        found = _message_name_literals(sample)
    finally:
        sample.unlink()
    # In line order; the field called "error" on the last line is not a message name.
    assert [entry.split(" ", 1)[1] for entry in found] == [
        "'start'", "'flush_context'", "'context_created'", "'audio_chunk'", "'error'"
    ]  # fmt: skip


@pytest.mark.parametrize("path", SPEAKERS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_bare_message_name_in_the_emulator_or_the_client(path: Path) -> None:
    assert _message_name_literals(path) == []


def _name_of(frame: dict[str, Any]) -> str:
    """A recorded frame's message name, typed or envelope."""
    if isinstance(frame.get("type"), str):
        return str(frame["type"])
    keys = [key for key in frame if key in NAMES]
    assert len(keys) == 1, frame
    return str(keys[0])


async def test_every_frame_either_side_sent_is_in_the_vocabulary() -> None:
    """A whole STT session and TTS synthesis, in each handshake style 60db documents (§9.2)."""
    for handshake in ("envelope", "typed", "both"):
        settings = EmulatorSettings(handshake=handshake, stt_connected="after_start")
        async with Emulator(settings) as emulator, make_client(emulator) as client:
            emulator.script_transcripts(["hello"])
            await transcribe(client, speech("hello"), SttOptions(interim_results_ms=300))
            async with asyncio.timeout(10):
                async for _ in client.synthesize("Hi there.", TtsOptions(DEFAULT_VOICE_ID)):
                    pass
        stt_sent = {_name_of(f) for record in emulator.stt_sessions for f in record.sent}
        stt_received = {_name_of(f) for record in emulator.stt_sessions for f in record.received}
        tts_sent = {_name_of(f) for record in emulator.tts_connections for f in record.sent}
        tts_received = {_name_of(f) for record in emulator.tts_connections for f in record.received}
        assert stt_sent <= STT_SERVER_MESSAGES and tts_sent <= TTS_SERVER_MESSAGES
        assert stt_received <= STT_CLIENT_MESSAGES and tts_received <= TTS_CLIENT_MESSAGES
        assert {"transcription", "session_stopped", "connection_established"} <= stt_sent
        assert {"audio_chunk", "context_closed"} <= tts_sent
        assert {"start", "audio", "stop"} <= stt_received
        assert set(TTS_CLIENT_MESSAGES) <= tts_received

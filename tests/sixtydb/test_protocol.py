"""The tolerant reader accepts every documented variant (60db-protocol.md §9)."""

from __future__ import annotations

import pytest

from wyoming_60db.sixtydb import errors, protocol


@pytest.mark.parametrize(
    "message",
    [
        # §9.2 envelope style (TTS doc, STT clients)
        {"connection_established": {"service": "stt", "user_id": 43, "credit_balance": 9.97,
                                    "workspace": "default"}},
        # §9.2 typed style with flat fields (STT reference diagram)
        {"type": "connection_established", "service": "stt", "user_id": 43,
         "credit_balance": 9.97, "workspace": "default"},
        # both at once
        {"type": "connection_established",
         "connection_established": {"user_id": 43, "credit_balance": 9.97, "workspace": "default"}},
    ],
)  # fmt: skip
def test_connection_established_in_every_style(message: protocol.JsonObject) -> None:
    assert protocol.kind(message) == "connection_established"
    assert protocol.account(message) == protocol.Account("43", 9.97, "default")


def test_connecting_envelope_is_recognised() -> None:
    message = {"connecting": True, "message": "Authenticating...", "timestamp": 1}
    assert protocol.kind(message) == "connecting"


def test_unknown_message_has_no_kind() -> None:
    assert protocol.kind({"heartbeat": {"n": 1}}) is None
    assert protocol.kind({"type": "usage_update"}) == "usage_update"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"context_created": {"context_id": "c1"}}, "c1"),
        ({"context_created": True}, None),  # §3.4 simplified acks
        ({"type": "context_created", "context_id": "c2"}, "c2"),
    ],
)
def test_context_id_in_object_and_bare_acks(
    message: protocol.JsonObject, expected: str | None
) -> None:
    assert protocol.kind(message) == "context_created"
    assert protocol.context_id(message, "context_created") == expected


@pytest.mark.parametrize(
    ("message", "error_type", "code"),
    [
        ({"type": "error", "error": "Insufficient credits", "error_code": "INSUFFICIENT_CREDITS"},
         errors.InsufficientCreditsError, "insufficient_credits"),
        ({"type": "error", "error": "Too many concurrent STT sessions",
          "error_code": "STT_CONCURRENCY_LIMIT", "details": {"limit": 8}},
         errors.ConcurrencyLimitError, "concurrency_limit"),
        ({"error": {"context_id": "c", "message": "Voice not found"}},
         errors.UnknownVoiceError, "unknown_voice"),
        ({"error": "Invalid API key"}, errors.AuthenticationError, "auth_failed"),
        ({"type": "error", "error": "Unsupported language: ja",
          "error_code": "unsupported_language"},
         errors.UnsupportedLanguageError, "unsupported_language"),
        ({"error": {"message": "Unsupported sample_rate_hertz: 44100"}},
         errors.UnsupportedAudioFormatError, "unsupported_audio_format"),
        ({"error": {"message": "Text too long", "code": "text_too_long"}},
         errors.TextTooLongError, "text_too_long"),
        ({"type": "error", "error": "bad field", "error_code": "invalid_parameter"},
         errors.InvalidRequestError, "invalid_request"),
        ({"type": "error", "error": "Audio processing error"}, errors.ServerError, "server_error"),
        ({"type": "error"}, errors.ServerError, "server_error"),
    ],
)  # fmt: skip
def test_error_shapes_map_to_typed_errors(
    message: protocol.JsonObject, error_type: type[errors.SixtyDbError], code: str
) -> None:
    error = protocol.error(message, service="stt")
    assert type(error) is error_type
    assert error.code == code
    assert error.message


def test_concurrency_error_carries_the_limit() -> None:
    message = {"error": {"message": "Too many concurrent TTS sessions",
                         "code": "TTS_CONCURRENCY_LIMIT", "details": {"limit": 5}}}  # fmt: skip
    error = protocol.error(message, service="tts")
    assert isinstance(error, errors.ConcurrencyLimitError)
    assert (error.limit, error.service) == (5, "tts")


@pytest.mark.parametrize(
    ("fields", "canonical"),
    [
        ({"is_final": True, "speech_final": True}, True),
        ({"is_final": True, "speech_final": False}, False),  # first emit of the two-phase flow
        ({"is_final": False, "speech_final": False, "is_partial": True}, False),
        ({"is_final": True}, True),  # minimal documented form (§2.5)
        ({}, False),
    ],
)
def test_canonical_final(fields: protocol.JsonObject, canonical: bool) -> None:
    result = protocol.transcription({"type": "transcription", "text": "hi", **fields})
    assert result.is_canonical is canonical


def test_transcription_fields_are_normalised() -> None:
    result = protocol.transcription(
        {"type": "transcription", "text": None, "language": "EN", "confidence": 1,
         "sentence_id": 3, "is_final": True, "extra": {"ignored": True}}
    )  # fmt: skip
    assert (result.text, result.language, result.confidence, result.sentence_id) == (
        "",
        "en",
        1.0,
        3,
    )


def test_billing_summary() -> None:
    summary = {"total_duration_seconds": 12.4, "total_cost": 0.00062}
    message = {"type": "session_stopped", "billing_summary": summary}
    assert protocol.billing(message) == protocol.Billing(12.4, 0.00062)
    assert protocol.billing({"type": "session_stopped"}) is None


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"text"', b"\xff\xfe"])
def test_garbage_is_a_protocol_error(raw: str | bytes) -> None:
    with pytest.raises(errors.ProtocolError):
        protocol.decode(raw)


def test_close_1008_without_a_frame() -> None:
    credits = protocol.close_error(1008, "INSUFFICIENT_CREDITS", service="stt")
    assert isinstance(credits, errors.InsufficientCreditsError)
    assert isinstance(protocol.close_error(1008, "", service="tts"), errors.ServerError)
    assert protocol.close_error(1000, "", service="tts") is None

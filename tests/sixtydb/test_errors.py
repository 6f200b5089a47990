"""One HTTP status → error map for REST answers and refused WebSocket upgrades (§5.1)."""

from __future__ import annotations

import pytest

from wyoming_60db.sixtydb.errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    InsufficientCreditsError,
    RateLimitError,
    ServerError,
    SixtyDbError,
    UnknownVoiceError,
    error_for_http_status,
)


@pytest.mark.parametrize(
    ("status", "detail", "code", "rest", "upgrade"),
    [
        (401, "Unauthorized", None, AuthenticationError, AuthenticationError),
        (403, None, None, AuthenticationError, AuthenticationError),
        (402, "Insufficient wallet balance", None, InsufficientCreditsError,
         InsufficientCreditsError),
        (429, "Too many", "TTS_CONCURRENCY_LIMIT", ConcurrencyLimitError, ConcurrencyLimitError),
        # Without a code: the plan's request rate on REST, 60db's session count on a socket.
        (429, "Too many requests", None, RateLimitError, ConcurrencyLimitError),
        (404, "Voice not found", None, UnknownVoiceError, ConnectionLostError),
        (400, None, None, ServerError, ConnectionLostError),
        (499, "cancelled", "STT_CLIENT_CANCELLED", ServerError, ConnectionLostError),
        (500, None, None, ServerError, ConnectionLostError),
        (503, "<html>upstream down</html>", "STT_UPSTREAM_UNAVAILABLE", ServerError,
         ConnectionLostError),
    ],
)  # fmt: skip
def test_every_status_class(
    status: int,
    detail: str | None,
    code: str | None,
    rest: type[SixtyDbError],
    upgrade: type[SixtyDbError],
) -> None:
    as_rest = error_for_http_status(status, detail, service="rest", server_code=code)
    as_upgrade = error_for_http_status(
        status, detail, service="tts", server_code=code, upgrade=True
    )
    assert type(as_rest) is rest
    assert type(as_upgrade) is upgrade
    for error in (as_rest, as_upgrade):
        assert f"HTTP {status}" in error.message


def test_messages_keep_their_meaning() -> None:
    assert error_for_http_status(401, service="stt", upgrade=True).message == (
        "60db rejected the credentials: HTTP 401"
    )
    refused = error_for_http_status(502, service="stt", upgrade=True)
    assert refused.message == "60db refused the stt WebSocket (HTTP 502)"
    server = error_for_http_status(503, "busy", service="rest", server_code="X")
    assert isinstance(server, ServerError) and server.server_code == "X"
    assert server.message == "60db server error: busy (HTTP 503)"
    assert "wallet has no credits" in error_for_http_status(402, service="rest").message


def test_concurrency_limit_carries_service_and_limit() -> None:
    error = error_for_http_status(
        429, "Too many", service="rest", server_code="STT_CONCURRENCY_LIMIT", details={"limit": 8}
    )
    assert isinstance(error, ConcurrencyLimitError)
    assert (error.service, error.limit) == ("rest", 8)

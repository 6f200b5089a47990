"""URLs derive from one base URL; credentials never leak."""

from __future__ import annotations

import pytest

from wyoming_60db.sixtydb import ClientConfig, errors


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        ("https://api.60db.ai", "wss://api.60db.ai/ws/stt?apiKey=sk_live_x"),
        ("http://127.0.0.1:8600/", "ws://127.0.0.1:8600/ws/stt?apiKey=sk_live_x"),
        ("https://dev.example/tts", "wss://dev.example/tts/ws/stt?apiKey=sk_live_x"),
        ("wss://api.60db.ai", "wss://api.60db.ai/ws/stt?apiKey=sk_live_x"),
    ],
)
def test_websocket_url_from_base_url(api_url: str, expected: str) -> None:
    assert ClientConfig(api_key="sk_live_x", api_url=api_url).websocket_url("/ws/stt") == expected


def test_rest_base_maps_websocket_schemes_back() -> None:
    assert ClientConfig(api_url="ws://h:1/").rest_base == "http://h:1"


def test_token_authentication() -> None:
    config = ClientConfig(token="jwt.abc", workspace_id=24)
    assert config.auth_query() == {"token": "jwt.abc", "workspace_id": "24"}
    assert config.auth_headers() == {"Authorization": "Bearer jwt.abc"}


def test_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="https:// or http://"):
        ClientConfig(api_url="ftp://api.60db.ai")


def test_repr_and_redact_hide_credentials() -> None:
    config = ClientConfig(api_key="sk_live_secret", token="jwt-secret")
    assert "secret" not in repr(config)
    assert config.redact("key sk_live_secret and jwt-secret") == "key *** and ***"


def test_every_error_has_a_distinct_code() -> None:
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.SixtyDbError)]  # fmt: skip
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) > 10
    assert issubclass(errors.SixtyDbTimeoutError, TimeoutError)

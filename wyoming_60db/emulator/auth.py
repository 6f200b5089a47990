"""Credential checks for WebSocket query auth (§1.4) and REST Bearer auth (§1.3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .settings import EmulatorSettings

KEY_PREFIXES: Final = ("sk_live_", "sk_test_")  # §1.2


@dataclass(frozen=True)
class Credentials:
    """Outcome of an auth check.  ``identity`` keys concurrency accounting only."""

    ok: bool
    method: str | None  # "apiKey" | "token" | "bearer" | None: the only part recorded
    identity: str = field(default="", repr=False)


def key_is_valid(key: str, settings: EmulatorSettings) -> bool:
    """With ``api_key`` unset any well-formed key passes; else only that key."""
    if settings.api_key is not None:
        return key == settings.api_key
    return key.startswith(KEY_PREFIXES) and len(key) > len("sk_live_")


def ws_credentials(query: Mapping[str, str], settings: EmulatorSettings) -> Credentials:
    """``?apiKey=…`` or ``?token=<jwt>&workspace_id=<int>`` (§1.4)."""
    if "apiKey" in query:
        key = query["apiKey"]
        return Credentials(key_is_valid(key, settings), "apiKey", f"key:{key}")
    if "token" in query:
        token = query["token"]
        ok = bool(token) and _is_int(query.get("workspace_id", ""))
        if settings.api_key is not None:
            # Emulator rule: with a fixed key, the "JWT" must be that key.
            ok = ok and token == settings.api_key
        return Credentials(ok, "token", f"token:{token}")
    return Credentials(False, None)


def bearer_credentials(header: str | None, settings: EmulatorSettings) -> Credentials:
    """``Authorization: Bearer <key>`` (§1.3)."""
    if not header or not header.startswith("Bearer "):
        return Credentials(False, None)
    key = header.removeprefix("Bearer ").strip()
    return Credentials(key_is_valid(key, settings), "bearer", f"key:{key}")


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True

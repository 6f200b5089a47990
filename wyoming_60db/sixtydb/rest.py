"""60db's REST API: catalog and health (60db-protocol.md §5)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .config import HEALTH_PATH, ClientConfig
from .errors import (
    ConnectionLostError,
    ProtocolError,
    SixtyDbError,
    SixtyDbTimeoutError,
    error_for_http_status,
)


class RestApi:
    """Authenticated JSON requests with a timeout and typed errors."""

    def __init__(self, session: aiohttp.ClientSession, config: ClientConfig) -> None:
        self._session = session
        self._config = config

    async def get_json(self, path: str) -> Any:
        """GET ``path`` and decode its JSON body."""
        status, body = await self._get(path, authenticated=True)
        if status >= 400:
            raise self._status_error(status, body)
        try:
            return json.loads(body)
        except ValueError:
            raise ProtocolError(f"60db answered {path} with something that is not JSON") from None

    async def health(self) -> bool:
        """Whether 60db answers its unauthenticated health check (§4)."""
        try:
            status, _ = await self._get(HEALTH_PATH, authenticated=False)
        except SixtyDbError:
            return False
        return status == 200

    async def _get(self, path: str, *, authenticated: bool) -> tuple[int, bytes]:
        headers = self._config.auth_headers() if authenticated else {}
        url = self._config.rest_base + path
        try:
            async with asyncio.timeout(self._config.timeouts.rest):
                async with self._session.get(url, headers=headers) as response:
                    return response.status, await response.read()
        except TimeoutError:
            raise SixtyDbTimeoutError(
                f"60db did not answer {path} within {self._config.timeouts.rest:.0f} s"
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise ConnectionLostError(
                f"cannot reach 60db at {self._config.rest_base}: "
                f"{self._config.redact(str(err)) or type(err).__name__}"
            ) from None

    def _status_error(self, status: int, body: bytes) -> SixtyDbError:
        message, code, details = _error_fields(body)
        return error_for_http_status(
            status,
            self._config.redact(message),
            service="rest",
            server_code=code,
            details=details,
        )


def _error_fields(body: bytes) -> tuple[str, str | None, dict[str, Any] | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:120].decode("utf-8", "replace"), None, None
    if not isinstance(data, dict):
        return str(data)[:120], None, None
    message = data.get("message") or data.get("error") or ""
    code = data.get("error_code") or data.get("code")
    details = data.get("details")
    return (
        str(message),
        str(code) if code else None,
        details if isinstance(details, dict) else None,
    )

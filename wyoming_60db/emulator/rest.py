"""HTTP side: health checks (§2.1, §4) and the catalog endpoints (§5.5, §5.6).

Catalog endpoints need ``Authorization: Bearer <key>`` (§1.3) and carry the
``X-RateLimit-*`` headers (§5.1).  A pending ``Fault(service="any")`` applies
to the next authenticated request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from .auth import bearer_credentials
from .catalog import languages_payload, stt_models_payload, voices_payload
from .connection import GARBAGE_FRAME
from .settings import Fault
from .state import EmulatorState

STATE_KEY: Final = web.AppKey("emulator_state", EmulatorState)
UNAUTHORIZED_BODY: Final = {"success": False, "error": "Unauthorized", "message": "Invalid API key"}
RATE_LIMIT_PER_MINUTE: Final = 300  # §6: the Pro plan row of the AUTH table

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BodyBuilder = Callable[[EmulatorState], Any]


@dataclass
class RateWindow:
    """Counts requests per wall-clock minute for the X-RateLimit headers."""

    window: int = 0
    used: int = 0

    def headers(self) -> dict[str, str]:
        minute = int(time.time() // 60)
        if minute != self.window:
            self.window, self.used = minute, 0
        self.used += 1
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT_PER_MINUTE),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT_PER_MINUTE - self.used)),
            "X-RateLimit-Reset": str((minute + 1) * 60),
        }


RATE_KEY: Final = web.AppKey("emulator_rate", RateWindow)


async def health(_request: web.Request) -> web.Response:
    """Load-balancer check: plain ``200 ok`` (§2.1, §4)."""
    return web.Response(text="ok", content_type="text/plain")


def catalog_endpoint(build: BodyBuilder) -> Handler:
    """Wrap a body builder with Bearer auth, faults and rate-limit headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        state.stats.rest_requests[request.path] += 1
        creds = bearer_credentials(request.headers.get("Authorization"), state.settings)
        response: web.StreamResponse
        if not creds.ok:
            response = web.json_response(UNAUTHORIZED_BODY, status=401)
        else:
            fault = state.take_fault("rest")
            if fault is not None:
                response = await _apply_fault(fault, request, state)
            else:
                response = web.json_response(build(state), dumps=_dumps)
        response.headers.update(request.app[RATE_KEY].headers())
        return response

    return handler


async def _apply_fault(
    fault: Fault, request: web.Request, state: EmulatorState
) -> web.StreamResponse:
    state.record_fault("rest", fault)
    if fault.kind == "error":
        body: dict[str, Any] = {"success": False, "message": fault.message}
        if fault.code is not None:
            body["error_code"] = fault.code
        return web.json_response(body, status=500)
    if fault.kind == "garbage":
        return web.Response(text=GARBAGE_FRAME, content_type="application/json")
    if fault.kind == "stall":
        await state.stopping.wait()  # never answers while the emulator runs
        return _abort(request, web.Response(status=503))
    # "drop": cut the body short.  Dropping before any byte is sent would be
    # invisible to aiohttp-style clients, which silently retry an idempotent GET.
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = 1024
    await response.prepare(request)
    await response.write(b'{"success": true, "data": [')
    return _abort(request, response)


def _abort(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if request.transport is not None:
        request.transport.abort()
    return response


def _voices(state: EmulatorState) -> Any:
    voices = voices_payload(state.settings.voices, state.settings.voices_shape)
    return {"success": True, "message": "Voices fetched successfully", "data": voices}


def _my_voices(state: EmulatorState) -> Any:
    """§5.6 ``/myvoices``: the caller's cloned voices, always a flat array."""
    mine = [v.to_json("split") for v in state.settings.voices if not v.built_in]
    return {"success": True, "message": "User voices fetched successfully", "data": mine}


def _languages(state: EmulatorState) -> Any:
    return languages_payload(state.settings.languages_shape)


def _models(_state: EmulatorState) -> Any:
    return stt_models_payload()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def add_rest_routes(app: web.Application) -> None:
    app.router.add_get("/", health)
    app.router.add_get("/health", health)
    for path in ("/voices", "/get-voices"):  # §5.6, §9.15: both serve the catalog
        app.router.add_get(path, catalog_endpoint(_voices))
    app.router.add_get("/myvoices", catalog_endpoint(_my_voices))
    app.router.add_get("/stt/languages", catalog_endpoint(_languages))
    app.router.add_get("/stt/models", catalog_endpoint(_models))

"""A fake Home Assistant Supervisor on loopback, and the app's options files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import free_port as free_port  # noqa: PLC0414 - re-exported

SAMPLE_OPTIONS = Path(__file__).with_name("sample_options.json")
SAMPLE_KEY = "sk_test_app_sample_secret_key"
TOKEN = "supervisor-token-for-tests"


@dataclass
class DiscoveryPost:
    authorization: str | None
    body: Any


@dataclass
class FakeSupervisor:
    """``POST /discovery`` as the Supervisor answers it; each request is recorded.

    ``answers`` are (status, body) pairs used in turn; when they run out the
    Supervisor's success answer follows.
    """

    url: str = ""
    posts: list[DiscoveryPost] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    async def discovery(self, request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except json.JSONDecodeError:
            body = None
        self.posts.append(DiscoveryPost(request.headers.get("Authorization"), body))
        if self.answers:
            status, answer = self.answers.pop(0)
            return web.json_response(answer, status=status)
        uuid = f"{len(self.posts):032x}"
        return web.json_response({"result": "ok", "data": {"uuid": uuid}})


@pytest.fixture
async def supervisor() -> AsyncIterator[FakeSupervisor]:
    fake = FakeSupervisor()
    app = web.Application()
    app.router.add_post("/discovery", fake.discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def write_options(path: Path, **changes: Any) -> Path:
    """The sample options with ``changes``; a value of ``None`` removes the option."""
    options = json.loads(SAMPLE_OPTIONS.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            options.pop(key, None)
        else:
            options[key] = value
    path.write_text(json.dumps(options), encoding="utf-8")
    return path

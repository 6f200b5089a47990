"""The Home Assistant app's entry point against a fake Supervisor on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Info
from wyoming.tts import Synthesize

from tests.app.conftest import (
    SAMPLE_KEY,
    SAMPLE_OPTIONS,
    TOKEN,
    FakeSupervisor,
    free_port,
    write_options,
)
from tests.conftest import describe, eventually, stop_process
from wyoming_60db import app
from wyoming_60db.cli import Command, parse_command_line
from wyoming_60db.emulator import Emulator, EmulatorSettings

WAIT = 15.0  # every wait is bounded by this


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """60db on loopback, accepting only the sample options' key."""
    async with Emulator(EmulatorSettings(api_key=SAMPLE_KEY)) as emu:
        yield emu


def discovery_to(supervisor_url: str, **overrides: Any) -> app.Discovery:
    fields: dict[str, Any] = {
        "supervisor_url": supervisor_url,
        "token": TOKEN,
        "attempts": 3,
        "first_delay": 0.05,
        "timeout": 2.0,
    }
    fields.update(overrides)
    return app.Discovery(**fields)


async def wait_for_describe(port: int) -> Info:
    async with asyncio.timeout(WAIT):
        while True:
            try:
                return await describe(port)
            except OSError:
                await asyncio.sleep(0.05)


async def synthesize(port: int, text: str) -> list[str]:
    """Event types of one plain synthesis, up to audio-stop or error, repeats collapsed."""
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        types: list[str] = []
        while (event := await client.read_event()) is not None:
            if not types or types[-1] != event.type:
                types.append(event.type)
            if event.type in ("audio-stop", "error"):
                break
        return types


@contextlib.asynccontextmanager
async def running_app(
    options: Path, environ: Mapping[str, str], discovery: app.Discovery | None
) -> AsyncIterator[int]:
    """The app in this process, as ``main`` runs it, on a free loopback port."""
    port = free_port()
    command = app.server_command(app.load_options(options), f"tcp://127.0.0.1:{port}", environ)
    stop = asyncio.Event()
    task = asyncio.create_task(app.serve_app(command.settings, discovery, stop))
    try:
        await wait_for_describe(port)
        yield port
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await task


def expected_post(port: int) -> dict[str, Any]:
    uri = f"tcp://{socket.gethostname()}:{port}"
    return {"service": "wyoming", "config": {"uri": uri}}


# --------------------------------------------------------------------------- options


def test_sample_options_map_to_the_server_flags(tmp_path: Path) -> None:
    options = app.load_options(SAMPLE_OPTIONS)
    assert options.api_key == SAMPLE_KEY
    assert SAMPLE_KEY not in repr(options)
    key_file = tmp_path / "key"
    argv = app.server_arguments(options, "tcp://0.0.0.0:10300", key_file)
    assert argv == [
        "--uri", "tcp://0.0.0.0:10300",
        "--api-key-file", str(key_file),
        "--language", "en",
        "--language", "de-DE",
        "--voice", "Zara",
        "--stt-encoding", "mulaw",
        "--tts-sample-rate", "24000",
        "--tts-speed", "1.25",
        "--vad-sensitivity", "relaxed",
        "--no-endpointing",
        "--debug",
    ]  # fmt: skip


def test_defaults_and_no_key_mean_the_demo() -> None:
    # What the Supervisor stores for config.yaml's default options.
    options = app.AppOptions.from_json(
        {
            "languages": ["auto"],
            "stt_encoding": "linear",
            "tts_sample_rate": "16000",
            "tts_speed": 1.0,
            "end_of_speech_by_60db": True,
            "vad_sensitivity": "default",
            "debug_logging": False,
        }
    )
    assert options == app.AppOptions()
    argv = app.server_arguments(options, app.APP_URI, None)
    assert "--demo" in argv and "--api-key-file" not in argv and "--debug" not in argv
    command = app.server_command(options, app.APP_URI, {})
    assert command.settings.demo and command.settings.api_key is None
    assert command.settings.languages == ("auto",)
    assert command.settings.tts_sample_rate == 16000
    # An empty key is no key.
    assert app.AppOptions.from_json({"api_key": "  "}).api_key is None


def test_server_settings_from_the_sample_options() -> None:
    command = app.server_command(app.load_options(SAMPLE_OPTIONS), app.APP_URI, {})
    settings = command.settings
    assert settings.api_key == SAMPLE_KEY and not settings.demo
    assert settings.languages == ("en", "de")
    assert settings.voice == "Zara"
    assert settings.stt_encoding == "mulaw"
    assert settings.tts_sample_rate == 24000
    assert settings.tts_speed == 1.25
    assert settings.stt_endpointing is None  # the app's option switched it off
    assert settings.vad_sensitivity == "relaxed"
    assert settings.uri == app.APP_URI
    assert command.debug


def test_environment_cannot_change_the_key_or_demo() -> None:
    environ = {
        "SIXTYDB_API_KEY": "sk_live_from_the_environment",
        "SIXTYDB_DEMO": "true",
        "SIXTYDB_API_URL": "http://127.0.0.1:9",
    }
    settings = app.server_command(app.load_options(SAMPLE_OPTIONS), app.APP_URI, environ).settings
    assert settings.api_key == SAMPLE_KEY and not settings.demo
    assert settings.api_url == "http://127.0.0.1:9"  # other SIXTYDB_* still apply


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"api_key": 5}, "api_key"),
        ({"languages": [1]}, "languages"),
        ({"stt_encoding": "opus"}, "stt_encoding"),
        ({"tts_sample_rate": "22050"}, "tts_sample_rate"),
        ({"tts_speed": "fast"}, "tts_speed"),
        ({"tts_speed": True}, "tts_speed"),
        ({"debug_logging": "yes"}, "debug_logging"),
    ],
)
def test_bad_options_are_refused(data: object, message: str) -> None:
    with pytest.raises(app.OptionsError, match=message):
        app.AppOptions.from_json(data)


def test_sample_rate_as_number_or_string() -> None:
    assert app.AppOptions.from_json({"tts_sample_rate": 8000}).tts_sample_rate == 8000
    assert app.AppOptions.from_json({"tts_sample_rate": "48000"}).tts_sample_rate == 48000


def test_unreadable_or_broken_options_file_stops_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"cannot read .*missing\.json"):
        app.main(["--options", str(tmp_path / "missing.json")], {})
    broken = tmp_path / "options.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit, match="not valid JSON"):
        app.main([], {app.ENV_OPTIONS: str(broken)})


def test_the_key_goes_through_a_private_file(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], int, str]] = []
    real_parse = parse_command_line

    def spy(argv: Sequence[str], environ: Mapping[str, str]) -> Command:
        key_file = Path(argv[list(argv).index("--api-key-file") + 1])
        mode = stat.S_IMODE(key_file.stat().st_mode)
        seen.append((list(argv), mode, key_file.read_text(encoding="utf-8")))
        return real_parse(argv, environ)

    monkeypatch.setattr(app, "parse_command_line", spy)
    command = app.server_command(app.load_options(SAMPLE_OPTIONS), app.APP_URI, {})
    [(argv, mode, content)] = seen
    assert mode == 0o600
    assert content == SAMPLE_KEY
    assert not any(SAMPLE_KEY in arg for arg in argv)
    assert command.settings.api_key == SAMPLE_KEY
    key_file = Path(argv[argv.index("--api-key-file") + 1])
    assert not key_file.exists(), "the key file outlives start-up"


# --------------------------------------------------------------------------- in process


async def test_good_options_serve_and_announce(
    tmp_path: Path,
    emulator: Emulator,
    supervisor: FakeSupervisor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    options = write_options(tmp_path / "options.json")
    environ = {"SIXTYDB_API_URL": emulator.base_url}
    async with running_app(options, environ, discovery_to(supervisor.url)) as port:
        info = await wait_for_describe(port)
        assert [program.name for program in info.tts] == ["60db"]
        await eventually(lambda: supervisor.posts, "the discovery message")
        # The emulator takes only the options' key: speech proves it reached 60db.
        assert await synthesize(port, "Hello.") == ["audio-start", "audio-chunk", "audio-stop"]
    [post] = supervisor.posts
    assert post.authorization == f"Bearer {TOKEN}"
    assert post.body == expected_post(port)
    assert "Announced" in caplog.text
    assert SAMPLE_KEY not in caplog.text
    assert not any(r.levelno >= logging.ERROR for r in caplog.records), caplog.text


async def test_missing_key_runs_the_demo_and_says_so(
    tmp_path: Path, supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    options = write_options(tmp_path / "options.json", api_key=None)
    async with running_app(options, {}, discovery_to(supervisor.url)) as port:
        info = await wait_for_describe(port)
        assert info.tts[0].voices, "the demo serves the emulator's voices"
        assert "audio-stop" in await synthesize(port, "Demo.")
        await eventually(lambda: supervisor.posts, "the discovery message")
    assert supervisor.posts[0].body == expected_post(port)
    demo_lines = [r.getMessage() for r in caplog.records if "No API key" in r.getMessage()]
    assert demo_lines and "DEMO" in demo_lines[0]


async def test_supervisor_down_the_server_still_runs(
    tmp_path: Path, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    options = write_options(tmp_path / "options.json")
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    environ = {"SIXTYDB_API_URL": emulator.base_url}
    async with running_app(options, environ, discovery_to(nobody)) as port:

        def gave_up() -> bool:
            return any(
                r.levelno == logging.ERROR and "Could not announce" in r.getMessage()
                for r in caplog.records
            )

        await eventually(gave_up, "the discovery error")
        assert (await describe(port)).tts, "the server stopped answering"
        assert "audio-stop" in await synthesize(port, "Still here.")
    retries = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.WARNING for r in retries)
    assert SAMPLE_KEY not in caplog.text


async def test_supervisor_refusal_is_logged_and_not_retried(
    tmp_path: Path, supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor.answers.append(
        (403, {"result": "error", "message": "Apps must list services they provide"})
    )
    options = write_options(tmp_path / "options.json", api_key=None)
    async with running_app(options, {}, discovery_to(supervisor.url)) as port:
        await eventually(lambda: "refused" in caplog.text, "the refusal to be logged")
        assert (await describe(port)).tts
        await asyncio.sleep(0.2)  # a retry would come after 0.05 s
    assert len(supervisor.posts) == 1
    assert "HTTP 403: Apps must list services" in caplog.text


async def test_supervisor_error_then_success_is_retried(
    tmp_path: Path, supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    supervisor.answers.append((500, {"result": "error", "message": "busy"}))
    options = write_options(tmp_path / "options.json", api_key=None)
    async with running_app(options, {}, discovery_to(supervisor.url)):
        await eventually(lambda: len(supervisor.posts) == 2, "a second attempt")
        await eventually(lambda: "Announced" in caplog.text, "the success to be logged")
    assert "HTTP 500: busy" in caplog.text


async def test_without_a_supervisor_token_nothing_is_sent(
    tmp_path: Path, supervisor: FakeSupervisor, caplog: pytest.LogCaptureFixture
) -> None:
    options = write_options(tmp_path / "options.json", api_key=None)
    async with running_app(options, {}, discovery_to(supervisor.url, token=None)):
        await eventually(lambda: "SUPERVISOR_TOKEN" in caplog.text, "the warning")
    assert supervisor.posts == []


async def test_health_check(tmp_path: Path) -> None:
    options = write_options(tmp_path / "options.json", api_key=None)
    async with running_app(options, {}, None) as port:
        assert await app.health_check(f"tcp://127.0.0.1:{port}")
        assert await app.health_check(f"tcp://0.0.0.0:{port}")  # the app's own --uri
    assert not await app.health_check(f"tcp://127.0.0.1:{free_port()}", timeout=2.0)


# --------------------------------------------------------------------------- the process


async def test_the_process_as_the_supervisor_starts_it(
    tmp_path: Path, emulator: Emulator, supervisor: FakeSupervisor
) -> None:
    """``python -m wyoming_60db.app``: the key is in no argv, environment or log line."""
    options = write_options(tmp_path / "options.json")  # debug_logging: true
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    log_path = tmp_path / "app.log"
    port = free_port()
    env = {
        **os.environ,
        "SUPERVISOR_TOKEN": TOKEN,
        "SUPERVISOR_URL": supervisor.url,
        "SIXTYDB_APP_OPTIONS": str(options),
        "SIXTYDB_API_URL": emulator.base_url,
        "TMPDIR": str(private_tmp),
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wyoming_60db.app", "--uri", f"tcp://127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        )  # fmt: skip
    try:
        await eventually(lambda: supervisor.posts, "the discovery message", timeout=WAIT)
        assert await synthesize(port, "Hello.") == ["audio-start", "audio-chunk", "audio-stop"]
        proc = Path(f"/proc/{process.pid}")
        key = SAMPLE_KEY.encode()
        assert key not in (proc / "cmdline").read_bytes()
        assert key not in (proc / "environ").read_bytes()
        assert list(private_tmp.iterdir()) == [], "the key file was left behind"
    finally:
        exit_status = await stop_process(process, WAIT)
    assert exit_status == 0
    [post] = supervisor.posts
    assert post.authorization == f"Bearer {TOKEN}"
    assert post.body == expected_post(port)
    text = log_path.read_text(encoding="utf-8")
    assert "DEBUG" in text and "Announced" in text and "Stopping" in text
    assert SAMPLE_KEY not in text
    assert "Traceback" not in text

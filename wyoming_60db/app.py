"""Home Assistant app (formerly add-on) entry point: ``python -m wyoming_60db.app``.

The Supervisor writes the app's options to ``/data/options.json``. This module
turns them into the server's settings (the API key goes through a private
file, never a command line), runs the server in this process, and once it
listens announces it to Home Assistant::

    POST http://supervisor/discovery
    Authorization: Bearer $SUPERVISOR_TOKEN
    {"service": "wyoming", "config": {"uri": "tcp://HOSTNAME:10300"}}

No key in the options runs ``--demo``. A Supervisor that is down or refuses is
logged; the server keeps serving (the Wyoming integration can then be added
by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import aiohttp
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.server import AsyncTcpServer

from .cli import TTS_RATES, Command, env_names, parse_command_line
from .logs import start_logging
from .server import demo_settings, serving, wait_for_stop_signal
from .settings import ServerSettings
from .sixtydb.limits import STT_ENCODINGS, VAD_SENSITIVITIES
from .startup import start_backend, stop_backend

_LOGGER = logging.getLogger(__name__)

OPTIONS_PATH: Final = Path("/data/options.json")
APP_URI: Final = "tcp://0.0.0.0:10300"
SUPERVISOR_URL: Final = "http://supervisor"

ENV_OPTIONS: Final = "SIXTYDB_APP_OPTIONS"
"""Overrides ``/data/options.json`` (tests)."""
ENV_SUPERVISOR_URL: Final = "SUPERVISOR_URL"
"""Overrides ``http://supervisor`` (tests)."""
ENV_SUPERVISOR_TOKEN: Final = "SUPERVISOR_TOKEN"
"""Set by the Supervisor in every app container."""

# The app decides the key and demo mode; these must not leak in from the environment.
_IGNORED_ENV: Final = env_names("--api-key", "--demo")


class OptionsError(ValueError):
    """``options.json`` is missing, unreadable or holds a bad value."""


@dataclass(frozen=True, slots=True)
class AppOptions:
    """The app's options (``config.yaml``'s ``options``/``schema``). ``repr`` hides the key."""

    api_key: str | None = field(default=None, repr=False)
    languages: tuple[str, ...] = ("auto",)
    voice: str | None = None
    stt_encoding: str = "linear"
    tts_sample_rate: int = 16000
    tts_speed: float = 1.0
    end_of_speech_by_60db: bool = True
    vad_sensitivity: str = "default"
    debug_logging: bool = False

    @classmethod
    def from_json(cls, data: object) -> AppOptions:
        """Check types and values; unknown keys are ignored (the Supervisor drops them too)."""
        if not isinstance(data, dict):
            raise OptionsError("options must be a JSON object")
        options = cls()
        languages = data.get("languages", list(options.languages))
        if isinstance(languages, str):
            languages = languages.replace(",", " ").split()
        if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
            raise OptionsError("languages must be a list of language codes")
        encoding = _text(data, "stt_encoding") or options.stt_encoding
        if encoding not in STT_ENCODINGS:
            raise OptionsError(f"stt_encoding must be one of {', '.join(STT_ENCODINGS)}")
        sensitivity = _text(data, "vad_sensitivity") or options.vad_sensitivity
        if sensitivity not in VAD_SENSITIVITIES:
            raise OptionsError(f"vad_sensitivity must be one of {', '.join(VAD_SENSITIVITIES)}")
        return cls(
            api_key=_text(data, "api_key"),
            languages=tuple(code.strip() for code in languages if code.strip()) or ("auto",),
            voice=_text(data, "voice"),
            stt_encoding=encoding,
            tts_sample_rate=_sample_rate(data.get("tts_sample_rate", options.tts_sample_rate)),
            tts_speed=_number(data, "tts_speed", options.tts_speed),
            end_of_speech_by_60db=_boolean(data, "end_of_speech_by_60db", default=True),
            vad_sensitivity=sensitivity,
            debug_logging=_boolean(data, "debug_logging"),
        )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionsError(f"{key} must be text")
    return value.strip() or None


def _sample_rate(value: object) -> int:
    # The schema type list(8000|16000|…) makes the Supervisor store a string.
    try:
        rate = int(str(value))
    except ValueError:
        rate = 0
    if rate not in TTS_RATES:
        raise OptionsError(f"tts_sample_rate must be one of {', '.join(map(str, TTS_RATES))}")
    return rate


def _number(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OptionsError(f"{key} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise OptionsError(f"{key} must be a number") from None
    if not math.isfinite(number):
        raise OptionsError(f"{key} must be a number")
    return number


def _boolean(data: Mapping[str, Any], key: str, *, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise OptionsError(f"{key} must be true or false")
    return value


def load_options(path: Path) -> AppOptions:
    """Read the Supervisor's ``options.json``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OptionsError(f"cannot read {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise OptionsError(f"{path} is not valid JSON: {err}") from None
    return AppOptions.from_json(data)


def server_arguments(options: AppOptions, uri: str, key_file: Path | None) -> list[str]:
    """The server's command line for these options. It never holds the key itself."""
    argv = ["--uri", uri]
    argv += ["--api-key-file", str(key_file)] if key_file is not None else ["--demo"]
    for code in options.languages:
        argv += ["--language", code]
    if options.voice:
        argv += ["--voice", options.voice]
    argv += [
        "--stt-encoding", options.stt_encoding,
        "--tts-sample-rate", str(options.tts_sample_rate),
        "--tts-speed", repr(options.tts_speed),
        "--vad-sensitivity", options.vad_sensitivity,
    ]  # fmt: skip
    if not options.end_of_speech_by_60db:
        argv.append("--no-endpointing")
    if options.debug_logging:
        argv.append("--debug")
    return argv


@contextlib.contextmanager
def private_key_file(key: str) -> Iterator[Path]:
    """The key in a new file only this user can read (mode 0600), deleted afterwards."""
    descriptor, name = tempfile.mkstemp(prefix="60db-key-")
    path = Path(name)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(key)
        yield path
    finally:
        path.unlink(missing_ok=True)


def server_command(options: AppOptions, uri: str, environ: Mapping[str, str]) -> Command:
    """Parse the server's arguments as ``wyoming-60db`` would (exits on a bad value).

    Other ``SIXTYDB_*`` variables in ``environ`` still apply; the key and demo
    mode come from the options only.
    """
    env = {name: value for name, value in environ.items() if name not in _IGNORED_ENV}
    if options.api_key is None:
        return parse_command_line(server_arguments(options, uri, None), env)
    # The server reads the file while parsing; it is gone before anything listens.
    with private_key_file(options.api_key) as key_file:
        return parse_command_line(server_arguments(options, uri, key_file), env)


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True, slots=True)
class Discovery:
    """Where and how to announce the server to Home Assistant."""

    supervisor_url: str = SUPERVISOR_URL
    token: str | None = field(default=None, repr=False)
    hostname: str = field(default_factory=socket.gethostname)
    attempts: int = 5
    first_delay: float = 1.0
    """Seconds before the second attempt; doubled each time after."""
    timeout: float = 10.0
    """Per attempt."""


class _Retry(Exception):
    """A failure worth another attempt (connection, timeout, 5xx)."""


class _Refused(Exception):
    """A final answer (401, 403, 400): retrying cannot help."""


async def announce(discovery: Discovery, port: int) -> bool:
    """Send the ``wyoming`` discovery message; failures are logged, never raised."""
    uri = f"tcp://{discovery.hostname}:{port}"
    if not discovery.token:
        _LOGGER.warning(
            "%s is not set (not running under the Home Assistant Supervisor?): not announcing "
            "%s; add the Wyoming Protocol integration by hand",
            ENV_SUPERVISOR_TOKEN,
            uri,
        )
        return False
    url = discovery.supervisor_url.rstrip("/") + "/discovery"
    payload = {"service": "wyoming", "config": {"uri": uri}}
    headers = {"Authorization": f"Bearer {discovery.token}"}
    timeout = aiohttp.ClientTimeout(total=discovery.timeout)
    problem = "no attempt made"
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(1, discovery.attempts + 1):
            try:
                async with session.post(url, json=payload, headers=headers) as response:
                    uuid = await _discovery_result(response)
            except _Retry as err:
                problem = str(err)
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            except _Refused as err:
                _LOGGER.error(
                    "Home Assistant discovery of %s refused by the Supervisor: %s; add the "
                    "Wyoming Protocol integration by hand",
                    uri,
                    err,
                )
                return False
            else:
                _LOGGER.info("Announced %s to Home Assistant (discovery %s)", uri, uuid)
                return True
            if attempt < discovery.attempts:
                delay = discovery.first_delay * 2 ** (attempt - 1)
                _LOGGER.warning(
                    "Home Assistant discovery attempt %d of %d failed (%s); retrying in %g s",
                    attempt,
                    discovery.attempts,
                    problem,
                    delay,
                )
                await asyncio.sleep(delay)
    _LOGGER.error(
        "Could not announce %s to Home Assistant through the Supervisor at %s (%s); the "
        "server keeps running: add the Wyoming Protocol integration by hand",
        uri,
        discovery.supervisor_url,
        problem,
    )
    return False


async def _discovery_result(response: aiohttp.ClientResponse) -> str:
    """The message's uuid; raises ``_Retry`` or ``_Refused`` for a failure."""
    try:
        body: object = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        body = None
    result = body if isinstance(body, dict) else {}
    if response.status == 200 and result.get("result") == "ok":
        data = result.get("data")
        return str(data.get("uuid", "?")) if isinstance(data, dict) else "?"
    detail = f"HTTP {response.status}"
    if isinstance(result.get("message"), str):
        detail += f": {result['message']}"
    if response.status >= 500 or response.status == 200:
        raise _Retry(detail)
    raise _Refused(detail)


# --------------------------------------------------------------------------- running


async def serve_app(
    settings: ServerSettings, discovery: Discovery | None, stop: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set (default: SIGTERM or SIGINT); announce once listening."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.demo:
            _LOGGER.warning(
                "No API key in the app's options: running the DEMO (the built-in 60db "
                "emulator; TTS speaks beeps and STT understands only those). Enter your 60db "
                "API key in the app's Configuration tab and restart the app to use 60db."
            )
            settings = await stack.enter_async_context(demo_settings(settings))
        backend = await start_backend(settings)
        stack.push_async_callback(stop_backend, backend)
        server = await stack.enter_async_context(serving(settings, backend))
        if discovery is not None:
            if isinstance(server, AsyncTcpServer):
                task = asyncio.create_task(_announce_logged(discovery, server.port))
                stack.push_async_callback(_cancel, task)
            else:
                _LOGGER.error("Discovery needs a tcp:// URI, not %s; not announcing", settings.uri)
        if stop is None:
            await wait_for_stop_signal()
        else:
            await stop.wait()
        _LOGGER.info("Stopping")


async def _announce_logged(discovery: Discovery, port: int) -> bool:
    try:
        return await announce(discovery, port)
    except Exception:  # a bug must not take the server down with it
        _LOGGER.exception("Home Assistant discovery failed; the server keeps running")
        return False


async def _cancel(task: asyncio.Task[bool]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def health_check(uri: str, timeout: float = 5.0) -> bool:
    """Whether the server at ``uri`` answers ``describe`` with 60db's ``info`` (HEALTHCHECK)."""
    parsed = urlparse(uri)
    if parsed.hostname in ("0.0.0.0", "::", ""):
        uri = parsed._replace(netloc=f"127.0.0.1:{parsed.port}").geturl()
    try:
        async with asyncio.timeout(timeout), AsyncClient.from_uri(uri) as client:
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    info = Info.from_event(event)
                    return any(program.name == "60db" for program in info.tts)
    except (OSError, TimeoutError):
        return False
    return False


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The app entry point's own (small) command line."""
    parser = argparse.ArgumentParser(
        prog="python -m wyoming_60db.app",
        description="Run wyoming-60db as a Home Assistant app: options from the Supervisor's "
        "options.json, discovery through the Supervisor.",
    )
    parser.add_argument(
        "--options",
        type=Path,
        default=Path(environ.get(ENV_OPTIONS) or OPTIONS_PATH),
        help=f"The app's options [{ENV_OPTIONS}] (default: {OPTIONS_PATH})",
    )
    parser.add_argument("--uri", default=APP_URI, help=f"Where to listen (default: {APP_URI})")
    parser.add_argument(
        "--supervisor-url",
        default=environ.get(ENV_SUPERVISOR_URL) or SUPERVISOR_URL,
        help=f"The Supervisor's API [{ENV_SUPERVISOR_URL}] (default: {SUPERVISOR_URL})",
    )
    parser.add_argument(
        "--health-check",
        action="store_true",
        help="Exit 0 if the server at --uri answers describe, else 1 (for HEALTHCHECK)",
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Console entry point."""
    environ = os.environ if environ is None else environ
    args = build_parser(environ).parse_args(sys.argv[1:] if argv is None else argv)
    if args.health_check:
        sys.exit(0 if asyncio.run(health_check(args.uri)) else 1)
    try:
        options = load_options(args.options)
    except OptionsError as err:
        sys.exit(f"wyoming-60db app: {err}")
    command = server_command(options, args.uri, environ)
    start_logging(command)
    discovery = Discovery(
        supervisor_url=args.supervisor_url, token=environ.get(ENV_SUPERVISOR_TOKEN) or None
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_app(command.settings, discovery))


if __name__ == "__main__":
    main()

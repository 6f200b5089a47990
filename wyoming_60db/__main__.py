"""``wyoming-60db``: a Wyoming server for 60db's streaming speech-to-text and text-to-speech.

Every flag can also be set by an environment variable (shown in ``--help``);
the command line wins. ``--api-key-file`` keeps the key out of ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from wyoming.server import AsyncServer

from . import __version__
from .allow import DEFAULT_ALLOWED, AllowList
from .backend import DEFAULT_URI, SERVER_TIMEOUTS, ServerSettings, normalize_languages
from .server import DEFAULT_ZEROCONF_NAME, serve
from .sixtydb import DEFAULT_API_URL, ClientConfig
from .sixtydb.config import STT_CONCURRENCY, TTS_CONCURRENCY
from .sixtydb.stt import SttEncoding
from .sixtydb.tts import SPEED_RANGE

_LOGGER = logging.getLogger(__name__)

ENV_PREFIX: Final = "SIXTYDB_"
TTS_SAMPLE_RATES: Final = (8000, 16000, 24000, 48000)
# 60db's per-account limits (60db-protocol.md §6): the most a --stt-sessions /
# --tts-sessions share can be.
ACCOUNT_LIMITS: Final = {"stt": STT_CONCURRENCY, "tts": TTS_CONCURRENCY}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})

_Fail = Callable[[str], NoReturn]

ALLOW_HELP: Final = (
    "Serve clients from this network (CIDR, repeatable). Default: loopback, private and "
    "link-local ranges (" + ", ".join(DEFAULT_ALLOWED) + "). Wyoming has no authentication "
    "and every request spends your 60db credits, so never allow the whole internet "
    "(0.0.0.0/0) on a reachable port."
)


@dataclass(frozen=True, slots=True)
class Command:
    """What the command line asks for."""

    settings: ServerSettings
    debug: bool
    log_format: str


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser; defaults come from ``environ``."""

    def env(name: str) -> str | None:
        return environ.get(ENV_PREFIX + name)

    parser = argparse.ArgumentParser(
        prog="wyoming-60db",
        description="Wyoming server for the 60db cloud speech API (streaming STT and TTS).",
        epilog="Each option also reads the environment variable shown in brackets.",
    )
    add = parser.add_argument
    add(
        "--uri",
        default=env("URI") or DEFAULT_URI,
        help=f"tcp://HOST:PORT, unix://PATH or stdio:// [SIXTYDB_URI] (default: {DEFAULT_URI})",
    )
    add(
        "--api-key",
        default=env("API_KEY"),
        help="60db API key [SIXTYDB_API_KEY]; prefer --api-key-file, which ps does not show",
    )
    add(
        "--api-key-file",
        default=env("API_KEY_FILE"),
        type=Path,
        help="File holding the 60db API key [SIXTYDB_API_KEY_FILE]",
    )
    add(
        "--api-url",
        default=env("API_URL") or DEFAULT_API_URL,
        help=f"60db base URL [SIXTYDB_API_URL] (default: {DEFAULT_API_URL})",
    )
    add(
        "--language",
        action="append",
        metavar="CODE",
        help="STT language, repeatable, 'auto' = detect [SIXTYDB_LANGUAGE, comma-separated] "
        "(default: auto; a request's own language always wins)",
    )
    add(
        "--voice",
        default=env("VOICE"),
        help="Default TTS voice, by id or name [SIXTYDB_VOICE] (default: 60db's default, Zara)",
    )
    add(
        "--stt-encoding",
        default=env("STT_ENCODING") or "linear",
        help="Audio sent to 60db: linear (16 kHz PCM) or mulaw (8 kHz telephony) "
        "[SIXTYDB_STT_ENCODING] (default: linear)",
    )
    add(
        "--tts-sample-rate",
        default=env("TTS_SAMPLE_RATE") or "16000",
        help="TTS sample rate: 8000, 16000, 24000 or 48000 [SIXTYDB_TTS_SAMPLE_RATE] "
        "(default: 16000, what HA wants for satellites)",
    )
    add(
        "--tts-speed",
        default=env("TTS_SPEED") or "1.0",
        help="TTS speed, 0.5 to 2.0 [SIXTYDB_TTS_SPEED] (default: 1.0)",
    )
    add(
        "--zeroconf",
        nargs="?",
        const=DEFAULT_ZEROCONF_NAME,
        default=None,
        metavar="NAME",
        help=f"Announce the server for Home Assistant discovery, as NAME (default "
        f"{DEFAULT_ZEROCONF_NAME!r}; keep it stable) [SIXTYDB_ZEROCONF]",
    )
    add(
        "--allow",
        action="append",
        metavar="CIDR",
        help=ALLOW_HELP + " [SIXTYDB_ALLOW, comma-separated]",
    )
    add(
        "--demo",
        action="store_true",
        default=None,
        help="No key needed: run the built-in 60db emulator and use it [SIXTYDB_DEMO]",
    )

    def seconds(flag: str, name: str, field: str, what: str) -> None:
        default: float = getattr(SERVER_TIMEOUTS, field)
        add(
            flag,
            default=env(name) or str(default),
            metavar="SECONDS",
            help=f"{what} [{ENV_PREFIX}{name}] (default: {default:g})",
        )

    seconds(
        "--stt-idle-timeout",
        "STT_IDLE_TIMEOUT",
        "stt_audio_idle",
        "End a transcription whose client sends no audio for this long",
    )
    seconds(
        "--tts-idle-timeout",
        "TTS_IDLE_TIMEOUT",
        "tts_text_idle",
        "End a streamed synthesis whose client sends no text for this long",
    )
    seconds(
        "--warm-max-idle",
        "WARM_MAX_IDLE",
        "warm_max_idle",
        "Replace a pre-warmed 60db connection unused for this long; lower it if your "
        "router forgets idle connections sooner",
    )

    def sessions(service: str) -> None:
        limit = ACCOUNT_LIMITS[service]
        name = f"{service.upper()}_SESSIONS"
        add(
            f"--{service}-sessions",
            default=env(name),
            metavar="N",
            help=f"At most N 60db {service.upper()} sessions at once from this server (a "
            f"pre-warmed connection only ever takes a free one): its share of the account's "
            f"{limit} when several servers use one key [{ENV_PREFIX}{name}] "
            f"(default: {limit}, the whole account)",
        )

    sessions("stt")
    sessions("tts")
    add("--debug", action="store_true", default=None, help="Log DEBUG messages [SIXTYDB_DEBUG]")
    add(
        "--log-format",
        default=env("LOG_FORMAT") or logging.BASIC_FORMAT,
        help="Format of log messages [SIXTYDB_LOG_FORMAT]",
    )
    add("--version", action="version", version=__version__, help="Print the version and exit")
    return parser


def parse_command_line(argv: Sequence[str], environ: Mapping[str, str]) -> Command:
    """Parse and validate; exits with a usage message on a bad value."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)

    def fail(message: str) -> NoReturn:
        parser.error(message)

    def flag(value: bool | None, name: str) -> bool:
        if value is not None:
            return value
        raw = environ.get(ENV_PREFIX + name, "").strip().lower()
        if raw not in _TRUE | _FALSE:
            fail(f"{ENV_PREFIX}{name} must be true or false, not {raw!r}")
        return raw in _TRUE

    demo = flag(args.demo, "DEMO")
    settings = ServerSettings(
        uri=_checked_uri(args.uri, fail),
        api_key=None if demo else _api_key(args.api_key, args.api_key_file, fail),
        api_url=_checked_api_url(args.api_url, fail),
        languages=_languages(args.language or _env_list(environ, "LANGUAGE"), fail),
        voice=(args.voice or "").strip() or None,
        stt_encoding=_stt_encoding(args.stt_encoding, fail),
        tts_sample_rate=_sample_rate(args.tts_sample_rate, fail),
        tts_speed=_speed(args.tts_speed, fail),
        zeroconf=args.zeroconf or _env_zeroconf(environ),
        allow=_allow(args.allow or _env_list(environ, "ALLOW"), fail),
        demo=demo,
        timeouts=dataclasses.replace(
            SERVER_TIMEOUTS,
            stt_audio_idle=_seconds(args.stt_idle_timeout, "--stt-idle-timeout", fail),
            tts_text_idle=_seconds(args.tts_idle_timeout, "--tts-idle-timeout", fail),
            warm_max_idle=_seconds(args.warm_max_idle, "--warm-max-idle", fail),
        ),
        stt_concurrency=_sessions(args.stt_sessions, "stt", fail),
        tts_concurrency=_sessions(args.tts_sessions, "tts", fail),
    )
    return Command(settings, flag(args.debug, "DEBUG"), args.log_format)


def _env_list(environ: Mapping[str, str], name: str) -> list[str]:
    return environ.get(ENV_PREFIX + name, "").replace(",", " ").split()


def _env_zeroconf(environ: Mapping[str, str]) -> str | None:
    raw = environ.get(ENV_PREFIX + "ZEROCONF", "").strip()
    if raw.lower() in _FALSE:
        return None
    return DEFAULT_ZEROCONF_NAME if raw.lower() in _TRUE else raw


def _checked_uri(uri: str, fail: _Fail) -> str:
    try:
        AsyncServer.from_uri(uri)
    except ValueError as err:
        fail(f"--uri {uri!r}: {err}")
    return uri


def _api_key(key: str | None, key_file: Path | None, fail: _Fail) -> str | None:
    if key and key_file:
        fail("give either --api-key or --api-key-file, not both")
    if key_file is None:
        return (key or "").strip() or None
    try:
        text = key_file.read_text(encoding="utf-8").strip()
    except OSError as err:
        fail(f"cannot read --api-key-file {str(key_file)!r}: {err.strerror or err}")
    if not text:
        fail(f"--api-key-file {str(key_file)!r} is empty")
    return text


def _checked_api_url(url: str, fail: _Fail) -> str:
    try:
        ClientConfig(api_url=url)
    except ValueError as err:
        fail(f"--api-url: {err}")
    return url


def _languages(values: list[str], fail: _Fail) -> tuple[str, ...]:
    codes = normalize_languages(values)
    for code in codes:
        if code != "auto" and not (code.isalpha() and 2 <= len(code) <= 3):
            fail(f"--language {code!r} is not a language code such as en or de")
    return codes


def _stt_encoding(value: str, fail: _Fail) -> SttEncoding:
    encodings: dict[str, SttEncoding] = {"linear": "linear", "mulaw": "mulaw"}
    if value not in encodings:
        fail(f"--stt-encoding must be linear or mulaw, not {value!r}")
    return encodings[value]


def _sample_rate(value: str, fail: _Fail) -> int:
    try:
        rate = int(value)
    except ValueError:
        rate = 0
    if rate not in TTS_SAMPLE_RATES:
        fail(f"--tts-sample-rate must be one of {', '.join(map(str, TTS_SAMPLE_RATES))}")
    return rate


def _speed(value: str, fail: _Fail) -> float:
    try:
        speed = float(value)
    except ValueError:
        fail(f"--tts-speed: {value!r} is not a number")
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        fail(f"--tts-speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}")
    return speed


def _seconds(value: str, flag: str, fail: _Fail) -> float:
    try:
        seconds = float(value)
    except ValueError:
        fail(f"{flag}: {value!r} is not a number of seconds")
    if not 0 < seconds <= 3600:
        fail(f"{flag} must be more than 0 and at most 3600 seconds")
    return seconds


def _sessions(value: str | None, service: str, fail: _Fail) -> int | None:
    """A share of the account's sessions; None (unset) is the whole account."""
    if value is None or not value.strip():
        return None
    limit = ACCOUNT_LIMITS[service]
    flag = f"--{service}-sessions"
    try:
        count = int(value)
    except ValueError:
        fail(f"{flag}: {value!r} is not a whole number")
    if not 1 <= count <= limit:
        fail(f"{flag} must be from 1 to {limit} (60db allows {limit} per account)")
    return count


def _allow(values: list[str], fail: _Fail) -> AllowList:
    cidrs = [part for value in values for part in value.replace(",", " ").split()]
    if not cidrs:
        return AllowList.default()
    try:
        return AllowList.from_cidrs(cidrs)
    except ValueError as err:
        fail(f"--allow: {err}")


class RedactSecrets(logging.Filter):
    """Replaces secrets in every log record, whoever logs it (aiohttp included)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup_logging(command: Command) -> None:
    """Log to stderr; the API key is scrubbed from every line."""
    logging.basicConfig(
        level=logging.DEBUG if command.debug else logging.INFO, format=command.log_format
    )
    redact = RedactSecrets([command.settings.api_key or ""])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    _LOGGER.debug("Settings: %s", command.settings)


def run() -> None:
    """Console entry point (``wyoming-60db``)."""
    command = parse_command_line(sys.argv[1:], os.environ)
    setup_logging(command)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(command.settings))


if __name__ == "__main__":
    run()

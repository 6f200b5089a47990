"""The ``wyoming-60db`` command line, generated from one table of options.

Every option is a flag and an environment variable: ``--tts-speed`` reads
``SIXTYDB_TTS_SPEED``. A secret also gets a ``_FILE`` pair that reads it from
a file (``--api-key-file``, ``SIXTYDB_API_KEY_FILE``), which ``ps`` does not
show. The command line wins over the environment; a value from either goes
through the same check, and a bad one ends with argparse's usage message.
Ranges, rates and limits come from the client core (``sixtydb/limits.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from wyoming.server import AsyncServer

from . import __version__
from .allow import DEFAULT_ALLOWED, AllowList
from .server import DEFAULT_ZEROCONF_NAME
from .settings import SERVER_TIMEOUTS, ServerSettings, normalize_languages
from .sixtydb import ClientConfig
from .sixtydb.limits import (
    SPEED_RANGE,
    STT_CONCURRENCY,
    STT_ENCODINGS,
    STT_RATE_FOR_ENCODING,
    TTS_CONCURRENCY,
    TTS_SAMPLE_RATES,
    VAD_SENSITIVITIES,
    VAD_SENSITIVITY_MS,
    SttEncoding,
    VadSensitivity,
)

ENV_PREFIX: Final = "SIXTYDB_"
TTS_RATES: Final = tuple(sorted(TTS_SAMPLE_RATES["LINEAR16"]))
"""The rates the server asks 60db for: LINEAR16, what Wyoming's audio events carry."""
MAX_SECONDS: Final = 3600.0
"""The longest idle timeout accepted: a silent client holds one of the account's few sessions."""
MAX_INTERVAL: Final = 86400.0
"""The longest period of a periodic log line: a day."""
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})

_DEFAULTS: Final = ServerSettings()


class BadValue(Exception):
    """A value an option's check refuses; the message is the whole usage error."""


Check = Callable[[str, str], Any]
"""``check(text, flag)``: the option's value from its text ("" = not set), or ``BadValue``."""

Form = Literal["value", "list", "switch", "name"]
"""``value``: one value. ``list``: repeatable, and comma-separated in the environment.
``switch``: on or off (``true``/``false`` in the environment); off unless its
``default`` is ``"true"``, and such a switch also gets a ``--no-…`` flag.
``name``: an optional value, ``const`` when the flag is given bare."""


@dataclass(frozen=True, slots=True)
class Option:
    """One line of the table: a flag, its environment variable, its check."""

    flag: str
    help: str
    check: Check | None = None
    """None for a switch, which is only ever on or off."""
    default: str = ""
    """The text used when neither the command line nor the environment sets it."""
    default_help: str | None = None
    """How ``--help`` states the default, when it is not ``default`` itself."""
    metavar: str | None = None
    form: Form = "value"
    const: str | None = None
    secret: bool = False
    """Also a ``…-file`` flag and a ``…_FILE`` variable, which read it from a file."""

    @property
    def dest(self) -> str:
        """The name the parser stores it under: ``--tts-speed`` → ``tts_speed``."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def env(self) -> str:
        """``--tts-speed`` → ``SIXTYDB_TTS_SPEED``."""
        return ENV_PREFIX + self.dest.upper()

    @property
    def file_flag(self) -> str:
        """A secret's file flag: ``--api-key`` → ``--api-key-file``."""
        return f"{self.flag}-file"

    @property
    def file_dest(self) -> str:
        """Where the parser stores a secret's file: ``api_key_file``."""
        return f"{self.dest}_file"

    @property
    def file_env(self) -> str:
        """A secret's file variable: ``SIXTYDB_API_KEY_FILE``."""
        return f"{self.env}_FILE"

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment variable this option reads."""
        return (self.env, self.file_env) if self.secret else (self.env,)

    @property
    def on_by_default(self) -> bool:
        """A switch that is on unless turned off (``--no-…``, ``false``)."""
        return self.form == "switch" and self.default in TRUE_WORDS

    def help_text(self) -> str:
        """The ``--help`` line: what it does, its variable, its default."""
        env = f"{self.env}, comma-separated" if self.form == "list" else self.env
        text = f"{self.help} [{env}]"
        if self.secret:
            text += f"; prefer {self.file_flag}, which ps does not show"
        shown = self.default if self.default_help is None else self.default_help
        return f"{text} (default: {shown})" if shown else text


# --------------------------------------------------------------------------- checks


_Name = TypeVar("_Name", bound=str)


def _one_of(values: Sequence[object]) -> str:
    """``("a", "b", "c")`` → ``a, b or c``."""
    words = [str(value) for value in values]
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _verbatim(text: str, flag: str) -> str:
    return text


def _text(text: str, flag: str) -> str | None:
    """Trimmed text; nothing is None."""
    return text.strip() or None


def _uri(text: str, flag: str) -> str:
    try:
        AsyncServer.from_uri(text)
    except ValueError as err:
        raise BadValue(f"{flag} {text!r}: {err}") from None
    return text


def _api_url(text: str, flag: str) -> str:
    try:
        ClientConfig(api_url=text)
    except ValueError as err:
        raise BadValue(f"{flag}: {err}") from None
    return text


def _languages(text: str, flag: str) -> tuple[str, ...]:
    codes = normalize_languages([text])
    for code in codes:
        if code != "auto" and not (code.isalpha() and 2 <= len(code) <= 3):
            raise BadValue(f"{flag} {code!r} is not a language code such as en or de")
    return codes


def _pick(text: str, flag: str, choices: tuple[_Name, ...]) -> _Name:
    """``text`` as one of ``choices`` (typed as the choices are)."""
    for choice in choices:
        if text == choice:
            return choice
    raise BadValue(f"{flag} must be {_one_of(choices)}, not {text!r}")


def _float(text: str, flag: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadValue(f"{flag}: {text!r} is not {what}") from None


def _stt_encoding(text: str, flag: str) -> SttEncoding:
    return _pick(text, flag, STT_ENCODINGS)


def _sample_rate(text: str, flag: str) -> int:
    try:
        rate = int(text)
    except ValueError:
        rate = 0
    if rate not in TTS_RATES:
        raise BadValue(f"{flag} must be one of {', '.join(map(str, TTS_RATES))}")
    return rate


def _speed(text: str, flag: str) -> float:
    speed = _float(text, flag, "a number")
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
        raise BadValue(f"{flag} must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}")
    return speed


def _seconds(text: str, flag: str) -> float:
    seconds = _float(text, flag, "a number of seconds")
    if not 0 < seconds <= MAX_SECONDS:
        raise BadValue(f"{flag} must be more than 0 and at most {MAX_SECONDS:g} seconds")
    return seconds


def _interval(text: str, flag: str) -> float:
    """Seconds between periodic actions; 0 turns them off."""
    seconds = _float(text, flag, "a number of seconds")
    if not 0 <= seconds <= MAX_INTERVAL:
        raise BadValue(f"{flag} must be from 0 (off) to {MAX_INTERVAL:g} seconds")
    return seconds


def _vad_sensitivity(text: str, flag: str) -> VadSensitivity:
    return _pick(text, flag, VAD_SENSITIVITIES)


def _share_of(limit: int) -> Check:
    """A share of the account's ``limit`` sessions; not set is the whole account (None)."""

    def check(text: str, flag: str) -> int | None:
        if not text.strip():
            return None
        try:
            count = int(text)
        except ValueError:
            raise BadValue(f"{flag}: {text!r} is not a whole number") from None
        if not 1 <= count <= limit:
            raise BadValue(f"{flag} must be from 1 to {limit} (60db allows {limit} per account)")
        return count

    return check


def _allow(text: str, flag: str) -> AllowList:
    cidrs = text.replace(",", " ").split()
    if not cidrs:
        return AllowList.default()
    try:
        return AllowList.from_cidrs(cidrs)
    except ValueError as err:
        raise BadValue(f"{flag}: {err}") from None


# --------------------------------------------------------------------------- the table


def _seconds_option(flag: str, field: str, what: str) -> Option:
    return Option(
        flag, what, _seconds, default=f"{getattr(SERVER_TIMEOUTS, field):g}", metavar="SECONDS"
    )


def _sessions_option(service: str, limit: int) -> Option:
    return Option(
        f"--{service}-sessions",
        f"At most N 60db {service.upper()} sessions at once from this server (a pre-warmed "
        f"connection only ever takes a free one): its share of the account's {limit} when "
        "several servers use one key",
        _share_of(limit),
        default_help=f"{limit}, the whole account",
        metavar="N",
    )


_SENSITIVITIES_HELP: Final = _one_of(
    [f"{name} ({VAD_SENSITIVITY_MS[name]} ms)" for name in VAD_SENSITIVITIES]
)
_ENCODINGS_HELP: Final = _one_of(
    [f"{encoding} ({STT_RATE_FOR_ENCODING[encoding] // 1000} kHz)" for encoding in STT_ENCODINGS]
)

OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "--uri",
        "tcp://HOST:PORT, unix://PATH or stdio://",
        _uri,
        default=_DEFAULTS.uri,
        metavar="URI",
    ),
    Option("--api-key", "60db API key", _text, metavar="KEY", secret=True),
    Option("--api-url", "60db base URL", _api_url, default=_DEFAULTS.api_url, metavar="URL"),
    Option(
        "--language",
        "STT language, repeatable, 'auto' = detect",
        _languages,
        default_help="auto; a request's own language always wins",
        metavar="CODE",
        form="list",
    ),
    Option(
        "--voice",
        "Default TTS voice, by id or name",
        _text,
        default_help="60db's default, Zara",
        metavar="VOICE",
    ),
    Option(
        "--stt-encoding",
        f"Audio sent to 60db: {_ENCODINGS_HELP}; mulaw is telephony quality",
        _stt_encoding,
        default=_DEFAULTS.stt_encoding,
        metavar="ENCODING",
    ),
    Option(
        "--tts-sample-rate",
        f"TTS sample rate: {_one_of(TTS_RATES)}",
        _sample_rate,
        default=str(_DEFAULTS.tts_sample_rate),
        default_help=f"{_DEFAULTS.tts_sample_rate}, what HA wants for satellites",
        metavar="HZ",
    ),
    Option(
        "--tts-speed",
        f"TTS speed, {SPEED_RANGE[0]} to {SPEED_RANGE[1]}",
        _speed,
        default=str(_DEFAULTS.tts_speed),
        metavar="SPEED",
    ),
    Option(
        "--zeroconf",
        "Announce the server for Home Assistant discovery, as NAME (keep it stable)",
        _text,
        default_help=f"off; NAME {DEFAULT_ZEROCONF_NAME!r} when given bare",
        metavar="NAME",
        form="name",
        const=DEFAULT_ZEROCONF_NAME,
    ),
    Option(
        "--allow",
        "Serve clients from this network (CIDR, repeatable). Wyoming has no authentication "
        "and every request spends your 60db credits, so never allow the whole internet "
        "(0.0.0.0/0) on a reachable port",
        _allow,
        default_help="loopback, private and link-local ranges: " + ", ".join(DEFAULT_ALLOWED),
        metavar="CIDR",
        form="list",
    ),
    Option(
        "--demo",
        "No key needed: run the built-in 60db emulator and use it",
        form="switch",
    ),
    _seconds_option(
        "--stt-idle-timeout",
        "stt_audio_idle",
        "End a transcription whose client sends no audio for this long",
    ),
    _seconds_option(
        "--tts-idle-timeout",
        "tts_text_idle",
        "End a streamed synthesis whose client sends no text for this long",
    ),
    _seconds_option(
        "--warm-max-idle",
        "warm_max_idle",
        "Replace a pre-warmed 60db connection unused for this long; lower it if your "
        "router forgets idle connections sooner",
    ),
    _sessions_option("stt", STT_CONCURRENCY),
    _sessions_option("tts", TTS_CONCURRENCY),
    Option(
        "--endpointing",
        "60db hears the end of a command and the transcript goes out at once, before the "
        "client's audio-stop (Home Assistant 2026.10+ then runs no VAD of its own); "
        "--no-endpointing waits for the client's audio-stop",
        form="switch",
        default="true",
        default_help="on",
    ),
    Option(
        "--vad-sensitivity",
        f"How long a pause ends a command, for requests that do not say: {_SENSITIVITIES_HELP}",
        _vad_sensitivity,
        default=_DEFAULTS.vad_sensitivity,
        metavar="NAME",
    ),
    Option(
        "--max-command-seconds",
        "With endpointing: a command still going after this much audio is finalised",
        _seconds,
        default=f"{_DEFAULTS.max_command_seconds:g}",
        metavar="SECONDS",
    ),
    Option(
        "--no-speech-seconds",
        "With endpointing: after this much audio without speech the transcript is empty",
        _seconds,
        default=f"{_DEFAULTS.no_speech_seconds:g}",
        metavar="SECONDS",
    ),
    Option(
        "--usage-log-interval",
        "Log the account's totals since start (STT sessions, audio, cost, credit balance) "
        "at INFO this often, when they changed; 0 = never",
        _interval,
        default=f"{_DEFAULTS.usage_log_interval:g}",
        metavar="SECONDS",
    ),
    Option("--debug", "Log DEBUG messages", form="switch"),
    Option(
        "--log-format",
        "Format of log messages",
        _verbatim,
        default=logging.BASIC_FORMAT,
        metavar="FORMAT",
    ),
)
"""Every option of ``wyoming-60db``, in ``--help`` order."""

OPTIONS_BY_DEST: Final = {option.dest: option for option in OPTIONS}


def env_names(*flags: str) -> frozenset[str]:
    """The environment variables of these flags (a secret's ``_FILE`` one included)."""
    return frozenset(
        name for option in OPTIONS if option.flag in flags for name in option.env_names
    )


# --------------------------------------------------------------------------- the parser


@dataclass(frozen=True, slots=True)
class Command:
    """What the command line asks for."""

    settings: ServerSettings
    debug: bool
    log_format: str


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, generated from ``OPTIONS``.

    Nothing has an argparse default: ``None`` means "not on the command line",
    so the environment and then the table's default can fill it in.
    """
    parser = argparse.ArgumentParser(
        prog="wyoming-60db",
        description="Wyoming server for the 60db cloud speech API (streaming STT and TTS).",
        epilog="Each option also reads the environment variable shown in brackets; the "
        "command line wins. A secret's _FILE variable names a file holding it.",
    )
    for option in OPTIONS:
        _add(parser, option)
    parser.add_argument(
        "--version", action="version", version=__version__, help="Print the version and exit"
    )
    return parser


def _add(parser: argparse.ArgumentParser, option: Option) -> None:
    help_text = option.help_text().replace("%", "%%")  # argparse formats help with %
    if option.on_by_default:
        parser.add_argument(
            option.flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif option.form == "switch":
        parser.add_argument(option.flag, action="store_true", default=None, help=help_text)
    elif option.form == "list":
        parser.add_argument(option.flag, action="append", metavar=option.metavar, help=help_text)
    elif option.form == "name":
        parser.add_argument(
            option.flag, nargs="?", const=option.const, metavar=option.metavar, help=help_text
        )
    else:
        parser.add_argument(option.flag, metavar=option.metavar, help=help_text)
    if option.secret:
        parser.add_argument(
            option.file_flag,
            dest=option.file_dest,
            metavar="PATH",
            help=f"File holding the {option.help} [{option.file_env}]",
        )


def parse_command_line(argv: Sequence[str], environ: Mapping[str, str]) -> Command:
    """Parse and check; exits with a usage message on a bad value."""
    parser = build_parser()
    values = _Values(parser, parser.parse_args(argv), environ)
    demo: bool = values.read("demo")
    settings = ServerSettings(
        uri=values.read("uri"),
        api_key=None if demo else values.read("api_key"),  # --demo needs no key
        api_url=values.read("api_url"),
        languages=values.read("language"),
        voice=values.read("voice"),
        stt_encoding=values.read("stt_encoding"),
        tts_sample_rate=values.read("tts_sample_rate"),
        tts_speed=values.read("tts_speed"),
        zeroconf=values.read("zeroconf"),
        allow=values.read("allow"),
        demo=demo,
        timeouts=dataclasses.replace(
            SERVER_TIMEOUTS,
            stt_audio_idle=values.read("stt_idle_timeout"),
            tts_text_idle=values.read("tts_idle_timeout"),
            warm_max_idle=values.read("warm_max_idle"),
        ),
        stt_concurrency=values.read("stt_sessions"),
        tts_concurrency=values.read("tts_sessions"),
        endpointing=values.read("endpointing"),
        vad_sensitivity=values.read("vad_sensitivity"),
        max_command_seconds=values.read("max_command_seconds"),
        no_speech_seconds=values.read("no_speech_seconds"),
        usage_log_interval=values.read("usage_log_interval"),
    )
    return Command(settings, debug=values.read("debug"), log_format=values.read("log_format"))


class _Values:
    """Each option's value: from the command line, else the environment, else the default."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        args: argparse.Namespace,
        environ: Mapping[str, str],
    ) -> None:
        self._parser = parser
        self._args = args
        self._environ = environ

    def read(self, dest: str) -> Any:
        """The checked value of the option stored as ``dest``; exits on a bad one."""
        try:
            return self._value(OPTIONS_BY_DEST[dest])
        except BadValue as err:
            self._parser.error(str(err))

    def _value(self, option: Option) -> Any:
        if option.form == "switch":
            return self._switch(option)
        text, source = self._secret(option) if option.secret else self._text(option)
        if option.form == "name" and source == option.env:
            return self._name_from_env(option, text)
        assert option.check is not None, option.flag
        try:
            return option.check(text, option.flag)
        except BadValue as err:
            raise BadValue(_from(str(err), source)) from None

    def _given(self, dest: str) -> object:
        """What the command line gave (None: not given)."""
        return getattr(self._args, dest)

    def _given_text(self, dest: str) -> str | None:
        given = self._given(dest)
        return given if isinstance(given, str) else None

    def _env(self, name: str) -> str:
        """A variable's text; blank is the same as not set (compose files, ``.env``)."""
        value = self._environ.get(name, "")
        return value if value.strip() else ""

    def _text(self, option: Option) -> tuple[str, str | None]:
        """The option's text and where it came from (None: the default)."""
        given = self._given(option.dest)
        if isinstance(given, list):
            return ",".join(given), option.flag
        if isinstance(given, str):
            return given, option.flag
        if text := self._env(option.env):
            return text, option.env
        return option.default, None

    def _secret(self, option: Option) -> tuple[str, str | None]:
        """A secret given itself or as a file; the command line's pair wins over the env's."""
        given, path = self._given_text(option.dest), self._given_text(option.file_dest)
        if given is None and path is None:
            given, path = self._env(option.env) or None, self._env(option.file_env) or None
            flags = (option.env, option.file_env)
        else:
            flags = (option.flag, option.file_flag)
        if given is not None and path is not None:
            raise BadValue(f"give either {flags[0]} or {flags[1]}, not both")
        if path is None:
            return given or "", flags[0]
        return _read_secret(option.file_flag, Path(path), flags[1]), flags[1]

    def _switch(self, option: Option) -> bool:
        given = self._given(option.dest)  # None, or what --flag / --no-flag said
        if isinstance(given, bool):
            return given
        raw = self._environ.get(option.env, "").strip().lower() or option.default
        if raw not in TRUE_WORDS | FALSE_WORDS:
            raise BadValue(f"{option.env} must be true or false, not {raw!r}")
        return raw in TRUE_WORDS

    @staticmethod
    def _name_from_env(option: Option, text: str) -> str | None:
        """``SIXTYDB_ZEROCONF``: a switch word, or the name itself."""
        word = text.strip().lower()
        if word in FALSE_WORDS:
            return None
        return option.const if word in TRUE_WORDS else text.strip()


def _from(message: str, source: str | None) -> str:
    """A bad value from the environment says which variable held it."""
    if source is None or source.startswith("--"):
        return message
    return f"{message} (from {source})"


def _read_secret(file_flag: str, path: Path, source: str) -> str:
    where = f"{file_flag} {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise BadValue(_from(f"cannot read {where}: {err.strerror or err}", source)) from None
    if not text:
        raise BadValue(_from(f"{where} is empty", source))
    return text

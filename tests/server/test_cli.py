"""The command line: every flag, its environment variable, and the real process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wyoming.client import AsyncClient, AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from tests.conftest import wait_for_port
from tests.server.conftest import WAIT, eventually, free_port, heard, read_until
from wyoming_60db import __version__
from wyoming_60db.allow import AllowList
from wyoming_60db.cli import OPTIONS, parse_command_line
from wyoming_60db.logs import RedactSecrets
from wyoming_60db.pipeline.endpointing import Endpointing
from wyoming_60db.settings import SERVER_TIMEOUTS

KEY = "sk_live_command_line_secret_123"


def parse(*argv: str, **env: str) -> object:
    return parse_command_line(list(argv), env).settings


def test_defaults() -> None:
    command = parse_command_line([], {})
    settings = command.settings
    assert settings.uri == "tcp://0.0.0.0:10300"
    assert settings.api_key is None and settings.api_url == "https://api.60db.ai"
    assert settings.languages == ("auto",) and settings.voice is None
    assert settings.stt_encoding == "linear"
    assert (settings.tts_sample_rate, settings.tts_speed) == (16000, 1.0)
    assert settings.zeroconf is None and not settings.demo
    assert settings.allow == AllowList.default()
    assert not command.debug and command.log_format == logging.BASIC_FORMAT
    assert settings.endpointing and settings.vad_sensitivity == "default"
    assert (settings.max_command_seconds, settings.no_speech_seconds) == (15.0, 8.0)
    assert settings.usage_log_interval == 3600.0
    assert settings.stt_endpointing == Endpointing(max_command_seconds=15.0, no_speech_seconds=8.0)


def test_every_flag() -> None:
    command = parse_command_line(
        [
            "--uri", "unix:///tmp/60db.sock", "--api-key", KEY,
            "--api-url", "http://localhost:8600", "--language", "en-US",
            "--language", "de,hi", "--voice", "Zara", "--stt-encoding", "mulaw",
            "--tts-sample-rate", "24000", "--tts-speed", "1.5", "--zeroconf",
            "--allow", "10.1.0.0/16", "--allow", "192.168.5.7", "--debug",
            "--log-format", "%(message)s", "--stt-idle-timeout", "4.5",
            "--tts-idle-timeout", "60", "--warm-max-idle", "90", "--no-endpointing",
            "--vad-sensitivity", "relaxed", "--max-command-seconds", "20",
            "--no-speech-seconds", "4.5", "--usage-log-interval", "0",
        ],
        {},
    )  # fmt: skip
    settings = command.settings
    assert settings.uri == "unix:///tmp/60db.sock"
    assert settings.api_key == KEY and settings.api_url == "http://localhost:8600"
    assert settings.languages == ("en", "de", "hi")
    assert settings.voice == "Zara" and settings.stt_encoding == "mulaw"
    assert (settings.tts_sample_rate, settings.tts_speed) == (24000, 1.5)
    assert settings.zeroconf == "60db"
    assert settings.allow == AllowList.from_cidrs(["10.1.0.0/16", "192.168.5.7/32"])
    assert command.debug and command.log_format == "%(message)s"
    assert (settings.timeouts.stt_audio_idle, settings.timeouts.tts_text_idle) == (4.5, 60.0)
    assert settings.timeouts.warm_max_idle == 90.0
    assert settings.timeouts.stt_finalize == SERVER_TIMEOUTS.stt_finalize  # the rest unchanged
    assert not settings.endpointing and settings.stt_endpointing is None
    assert settings.vad_sensitivity == "relaxed"
    assert (settings.max_command_seconds, settings.no_speech_seconds) == (20.0, 4.5)
    assert settings.usage_log_interval == 0.0


def test_every_environment_variable() -> None:
    env = {
        "SIXTYDB_URI": "tcp://127.0.0.1:10555", "SIXTYDB_API_KEY": KEY,
        "SIXTYDB_API_URL": "http://localhost:1", "SIXTYDB_LANGUAGE": "en, auto",
        "SIXTYDB_VOICE": "Arjun", "SIXTYDB_STT_ENCODING": "mulaw",
        "SIXTYDB_TTS_SAMPLE_RATE": "8000", "SIXTYDB_TTS_SPEED": "0.5",
        "SIXTYDB_ZEROCONF": "kitchen-60db", "SIXTYDB_ALLOW": "10.0.0.0/8,fd00::/8",
        "SIXTYDB_DEMO": "yes", "SIXTYDB_DEBUG": "1", "SIXTYDB_LOG_FORMAT": "%(levelname)s",
        "SIXTYDB_STT_IDLE_TIMEOUT": "20", "SIXTYDB_TTS_IDLE_TIMEOUT": "15",
        "SIXTYDB_WARM_MAX_IDLE": "30", "SIXTYDB_ENDPOINTING": "off",
        "SIXTYDB_VAD_SENSITIVITY": "aggressive", "SIXTYDB_MAX_COMMAND_SECONDS": "30",
        "SIXTYDB_NO_SPEECH_SECONDS": "2", "SIXTYDB_USAGE_LOG_INTERVAL": "60",
    }  # fmt: skip
    command = parse_command_line([], env)
    settings = command.settings
    assert settings.uri == "tcp://127.0.0.1:10555" and settings.api_url == "http://localhost:1"
    assert settings.languages == ("en", "auto")
    assert settings.voice == "Arjun" and settings.stt_encoding == "mulaw"
    assert (settings.tts_sample_rate, settings.tts_speed) == (8000, 0.5)
    assert settings.zeroconf == "kitchen-60db"
    assert settings.allow == AllowList.from_cidrs(["10.0.0.0/8", "fd00::/8"])
    assert settings.demo and settings.api_key is None  # --demo needs no key
    assert command.debug and command.log_format == "%(levelname)s"
    assert (settings.timeouts.stt_audio_idle, settings.timeouts.tts_text_idle) == (20.0, 15.0)
    assert settings.timeouts.warm_max_idle == 30.0
    assert not settings.endpointing and settings.vad_sensitivity == "aggressive"
    assert (settings.max_command_seconds, settings.no_speech_seconds) == (30.0, 2.0)
    assert settings.usage_log_interval == 60.0


def test_endpointing_is_a_switch_that_is_on_unless_turned_off() -> None:
    assert parse_command_line([], {}).settings.endpointing
    assert not parse_command_line(["--no-endpointing"], {}).settings.endpointing
    assert not parse_command_line([], {"SIXTYDB_ENDPOINTING": "false"}).settings.endpointing
    assert parse_command_line([], {"SIXTYDB_ENDPOINTING": "yes"}).settings.endpointing
    # The command line wins over the environment, both ways.
    assert parse_command_line(["--endpointing"], {"SIXTYDB_ENDPOINTING": "0"}).settings.endpointing
    argv, env = ["--no-endpointing"], {"SIXTYDB_ENDPOINTING": "1"}
    assert not parse_command_line(argv, env).settings.endpointing
    # The switches that are off by default keep their single flag.
    assert parse_command_line(["--demo"], {}).settings.demo
    with pytest.raises(SystemExit):
        parse_command_line(["--no-demo"], {})


def test_command_line_wins_over_the_environment() -> None:
    env = {"SIXTYDB_LANGUAGE": "de", "SIXTYDB_TTS_SAMPLE_RATE": "8000", "SIXTYDB_DEBUG": "1"}
    command = parse_command_line(["--language", "fr", "--tts-sample-rate", "48000"], env)
    assert command.settings.languages == ("fr",)
    assert command.settings.tts_sample_rate == 48000


def test_zeroconf_name_and_switch_from_the_environment() -> None:
    assert parse_command_line(["--zeroconf", "den"], {}).settings.zeroconf == "den"
    assert parse_command_line([], {"SIXTYDB_ZEROCONF": "true"}).settings.zeroconf == "60db"
    assert parse_command_line([], {"SIXTYDB_ZEROCONF": "0"}).settings.zeroconf is None


def test_api_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n")
    assert parse_command_line(["--api-key-file", str(key_file)], {}).settings.api_key == KEY
    env = {"SIXTYDB_API_KEY_FILE": str(key_file)}
    assert parse_command_line([], env).settings.api_key == KEY


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tts-sample-rate", "44100"], "--tts-sample-rate must be one of"),
        (["--tts-speed", "3"], "--tts-speed must be between"),
        (["--tts-speed", "fast"], "is not a number"),
        (["--stt-encoding", "opus"], "--stt-encoding must be linear or mulaw"),
        (["--allow", "not-a-network"], "--allow"),
        (["--uri", "http://x:1"], "--uri"),
        (["--uri", "tcp://localhost"], "--uri"),
        (["--api-url", "ftp://example"], "--api-url"),
        (["--language", "english!"], "is not a language code"),
        (["--api-key", KEY, "--api-key-file", "/x"], "not both"),
        (["--api-key-file", "/nonexistent/key"], "cannot read --api-key-file"),
        (["--stt-idle-timeout", "soon"], "is not a number of seconds"),
        (["--tts-idle-timeout", "0"], "--tts-idle-timeout must be more than 0"),
        (["--vad-sensitivity", "fast"], "--vad-sensitivity must be default, relaxed or aggressive"),
        (["--max-command-seconds", "0"], "--max-command-seconds must be more than 0"),
        (["--no-speech-seconds", "-1"], "--no-speech-seconds must be more than 0"),
        (["--usage-log-interval", "-5"], "--usage-log-interval must be from 0 (off)"),
        (["--usage-log-interval", "hourly"], "is not a number of seconds"),
    ],
)
def test_bad_values_exit_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line(argv, {})
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# The same bad values, from the environment: the same check, the same usage
# message, and the message names the variable that held the value.
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SIXTYDB_TTS_SAMPLE_RATE", "44100", "--tts-sample-rate must be one of"),
        ("SIXTYDB_TTS_SPEED", "3", "--tts-speed must be between"),
        ("SIXTYDB_TTS_SPEED", "fast", "is not a number"),
        ("SIXTYDB_STT_ENCODING", "opus", "--stt-encoding must be linear or mulaw"),
        ("SIXTYDB_ALLOW", "not-a-network", "--allow"),
        ("SIXTYDB_URI", "http://x:1", "--uri"),
        ("SIXTYDB_API_URL", "ftp://example", "--api-url"),
        ("SIXTYDB_LANGUAGE", "english!", "is not a language code"),
        ("SIXTYDB_API_KEY_FILE", "/nonexistent/key", "cannot read --api-key-file"),
        ("SIXTYDB_STT_IDLE_TIMEOUT", "soon", "is not a number of seconds"),
        ("SIXTYDB_WARM_MAX_IDLE", "0", "--warm-max-idle must be more than 0"),
        ("SIXTYDB_TTS_SESSIONS", "6", "--tts-sessions must be from 1 to 5"),
        ("SIXTYDB_VAD_SENSITIVITY", "Relaxed", "--vad-sensitivity must be"),
        ("SIXTYDB_USAGE_LOG_INTERVAL", "100000", "--usage-log-interval must be from 0"),
    ],
)
def test_bad_environment_values_exit_with_the_same_message(
    name: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line([], {name: value})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: wyoming-60db")
    assert message in err and f"(from {name})" in err


def test_every_option_has_its_variable_and_is_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_command_line(["--help"], {})
    help_text = " ".join(capsys.readouterr().out.split()).replace(
        "comma- separated", "comma-separated"
    )
    pairs = [(option.flag, option.env) for option in OPTIONS]
    pairs += [(option.file_flag, option.file_env) for option in OPTIONS if option.secret]
    assert ("--api-key-file", "SIXTYDB_API_KEY_FILE") in pairs  # generated from secret=True
    for flag, env in pairs:
        assert env == "SIXTYDB_" + flag.removeprefix("--").replace("-", "_").upper()
        assert f"{flag} " in help_text, flag
        assert f"[{env}]" in help_text or f"[{env}, comma-separated]" in help_text, env


def test_the_readme_lists_every_option_with_its_variable() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Options\n", 1)[1].split("\n### ", 1)[0]
    rows = {
        cells[1].strip("` ").split()[0].strip("`,"): cells[2].strip()
        for line in section.splitlines()
        if line.startswith("| `--") and (cells := line.split("|"))
    }
    pairs = [(option.flag, option.env) for option in OPTIONS]
    pairs += [(option.file_flag, option.file_env) for option in OPTIONS if option.secret]
    for flag, env in pairs:
        assert flag in rows, f"README's options table lacks {flag}"
        assert f"`{env}`" in rows[flag], f"README's row of {flag} lacks {env}"


def test_every_option_is_read_from_its_variable() -> None:
    """Each option in the table changes the command when only its variable is set."""
    values = {
        "--uri": "tcp://127.0.0.1:1", "--api-key": KEY, "--api-url": "http://localhost:1",
        "--language": "de", "--voice": "Arjun", "--stt-encoding": "mulaw",
        "--tts-sample-rate": "8000", "--tts-speed": "0.5", "--zeroconf": "den",
        "--allow": "10.0.0.0/8", "--demo": "1", "--stt-idle-timeout": "1",
        "--tts-idle-timeout": "1", "--warm-max-idle": "1", "--stt-sessions": "1",
        "--tts-sessions": "1", "--debug": "on", "--log-format": "%(message)s",
        "--endpointing": "false", "--vad-sensitivity": "relaxed",
        "--max-command-seconds": "3", "--no-speech-seconds": "3", "--usage-log-interval": "0",
    }  # fmt: skip
    assert set(values) == {option.flag for option in OPTIONS}, "a new option needs a value here"
    default = parse_command_line([], {})
    for option in OPTIONS:
        # --demo drops the key, so the key is checked without it.
        command = parse_command_line([], {option.env: values[option.flag]})
        assert command != default, option.env


def test_api_key_file_from_the_environment_and_the_command_line_wins(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    other = tmp_path / "other"
    other.write_text("sk_live_other")
    env = {"SIXTYDB_API_KEY_FILE": str(other)}
    assert parse_command_line([], env).settings.api_key == "sk_live_other"
    argv = ["--api-key-file", str(key_file)]
    assert parse_command_line(argv, env).settings.api_key == KEY
    assert parse_command_line(argv, {"SIXTYDB_API_KEY": "sk_live_env"}).settings.api_key == KEY
    assert parse_command_line(["--api-key", KEY], env).settings.api_key == KEY


def test_api_key_and_its_file_in_the_environment_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "key").write_text(KEY)
    env = {"SIXTYDB_API_KEY": KEY, "SIXTYDB_API_KEY_FILE": str(tmp_path / "key")}
    with pytest.raises(SystemExit):
        parse_command_line([], env)
    assert "give either SIXTYDB_API_KEY or SIXTYDB_API_KEY_FILE, not both" in (
        capsys.readouterr().err
    )


def test_blank_variables_are_unset() -> None:
    env = {option.env: "  " for option in OPTIONS} | {"SIXTYDB_API_KEY_FILE": ""}
    assert parse_command_line([], env) == parse_command_line([], {})


def test_the_demo_reads_no_key_file() -> None:
    settings = parse_command_line(["--demo", "--api-key-file", "/nonexistent/key"], {}).settings
    assert settings.demo and settings.api_key is None


def test_bad_boolean_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_command_line([], {"SIXTYDB_DEMO": "maybe"})
    assert "SIXTYDB_DEMO must be true or false" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_command_line([], {"SIXTYDB_ENDPOINTING": "sometimes"})
    assert "SIXTYDB_ENDPOINTING must be true or false" in capsys.readouterr().err


def test_empty_api_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "key").write_text("\n")
    with pytest.raises(SystemExit):
        parse_command_line(["--api-key-file", str(tmp_path / "key")], {})
    assert "is empty" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line(["--version"], {})
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == __version__


def test_log_filter_redacts_the_key_from_any_logger() -> None:
    record = logging.LogRecord(
        "aiohttp", logging.DEBUG, "", 0, "GET %s", (f"/ws?apiKey={KEY}",), None
    )
    assert RedactSecrets([KEY]).filter(record)
    assert record.getMessage() == "GET /ws?apiKey=***"


# --------------------------------------------------------------------------- the process


async def start_process(
    *argv: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wyoming_60db", *argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
async def demo_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    port = free_port()
    process = await start_process("--demo", "--uri", f"tcp://127.0.0.1:{port}", "--debug")
    try:
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_demo_mode_serves_without_a_key_and_stops_on_sigterm(
    demo_process: tuple[asyncio.subprocess.Process, int],
) -> None:
    process, port = demo_process
    await wait_for_port(port)
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, ["info"]))[-1])
        await client.write_event(Synthesize(text="Demo works.").event())
        events = await read_until(client, ["audio-stop", "error"])
    assert len(info.tts[0].voices) == 8
    assert heard(b"".join(e.payload or b"" for e in events if e.type == "audio-chunk")) == (
        "demo works."
    )
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(WAIT):
        assert await process.wait() == 0
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "Demo mode" in log and "Stopping" in log and "Traceback" not in log


async def test_stdio_uri(tmp_path: Path) -> None:
    process = await start_process("--demo", "--uri", "stdio://")
    assert process.stdin is not None and process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            await async_write_event(Describe().event(), process.stdin)
            event = await async_read_event(process.stdout)
            assert event is not None and event.type == "info"
            process.stdin.close()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_unix_uri_and_missing_key_log(tmp_path: Path) -> None:
    socket_path = tmp_path / "60db.sock"
    process = await start_process("--uri", f"unix://{socket_path}", env={"SIXTYDB_API_KEY": ""})
    try:
        await eventually(socket_path.exists, "the server to listen")
        async with asyncio.timeout(WAIT):
            async with AsyncClient.from_uri(f"unix://{socket_path}") as client:
                await client.write_event(Describe().event())
                event: Event | None = await client.read_event()
            assert event is not None and event.type == "info"
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        assert process.stderr is not None
        assert "no 60db API key is configured" in (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# --------------------------------------------------------------------------- shares of the account


def test_sessions_default_to_the_whole_account() -> None:
    settings = parse_command_line([], {}).settings
    assert (settings.stt_concurrency, settings.tts_concurrency) == (None, None)
    config = settings.client_config()
    assert (config.stt_concurrency, config.tts_concurrency) == (8, 5)


def test_sessions_flags_give_this_replica_its_share() -> None:
    settings = parse_command_line(["--stt-sessions", "4", "--tts-sessions", "2"], {}).settings
    assert (settings.stt_concurrency, settings.tts_concurrency) == (4, 2)
    config = settings.client_config()
    assert (config.stt_concurrency, config.tts_concurrency) == (4, 2)


def test_sessions_from_the_environment_and_the_command_line_wins() -> None:
    env = {"SIXTYDB_STT_SESSIONS": "3", "SIXTYDB_TTS_SESSIONS": "1"}
    settings = parse_command_line([], env).settings
    assert (settings.stt_concurrency, settings.tts_concurrency) == (3, 1)
    settings = parse_command_line(["--stt-sessions", "5"], env).settings
    assert (settings.stt_concurrency, settings.tts_concurrency) == (5, 1)
    blank = {"SIXTYDB_STT_SESSIONS": "", "SIXTYDB_TTS_SESSIONS": " "}
    settings = parse_command_line([], blank).settings
    assert (settings.stt_concurrency, settings.tts_concurrency) == (None, None)


def test_sessions_accept_the_whole_range() -> None:
    for stt in range(1, 9):
        assert parse_command_line(["--stt-sessions", str(stt)], {}).settings.stt_concurrency == stt
    for tts in range(1, 6):
        assert parse_command_line(["--tts-sessions", str(tts)], {}).settings.tts_concurrency == tts


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--stt-sessions", "0"], {}, "--stt-sessions must be from 1 to 8"),
        (["--stt-sessions", "9"], {}, "--stt-sessions must be from 1 to 8"),
        (["--tts-sessions", "6"], {}, "--tts-sessions must be from 1 to 5"),
        (["--tts-sessions", "-1"], {}, "--tts-sessions must be from 1 to 5"),
        (["--stt-sessions", "four"], {}, "--stt-sessions: 'four' is not a whole number"),
        (["--tts-sessions", "2.5"], {}, "--tts-sessions: '2.5' is not a whole number"),
        ([], {"SIXTYDB_STT_SESSIONS": "12"}, "--stt-sessions must be from 1 to 8"),
        ([], {"SIXTYDB_TTS_SESSIONS": "x"}, "--tts-sessions: 'x' is not a whole number"),
    ],
)
def test_bad_sessions_exit_with_a_message(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_command_line(argv, env)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sessions_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_command_line(["--help"], {})
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--stt-sessions N" in help_text and "[SIXTYDB_STT_SESSIONS]" in help_text
    assert "--tts-sessions N" in help_text and "[SIXTYDB_TTS_SESSIONS]" in help_text
    assert "(default: 8, the whole account)" in help_text
    assert "(default: 5, the whole account)" in help_text


async def test_a_share_caps_the_running_server(tmp_path: Path) -> None:
    """The real process with --stt-sessions 1: a second transcription waits for the first."""
    from tests.server.conftest import ha_stt_events, speech
    from wyoming_60db.emulator import Emulator, EmulatorSettings

    async with Emulator(EmulatorSettings(concurrency_counts="connections")) as emulator:
        port = free_port()
        process = await start_process(
            "--uri", f"tcp://127.0.0.1:{port}", "--api-url", emulator.base_url,
            "--stt-sessions", "1", "--tts-sessions", "1",
            env={"SIXTYDB_API_KEY": KEY},
        )  # fmt: skip
        peak = 0

        async def transcribe(text: str) -> str:
            nonlocal peak
            async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
                for event in ha_stt_events(speech(text)):
                    await client.write_event(event)
                    peak = max(peak, emulator.active_slots("stt"))
                    await asyncio.sleep(0.001)
                events = await read_until(client, ["transcript", "error"])
            return str(events[-1].data.get("text"))

        try:
            await wait_for_port(port)
            heard_texts = await asyncio.gather(transcribe("one"), transcribe("two"))
            assert list(heard_texts) == ["one", "two"]
            # One socket at a time, counting the warm one (held only in a free slot).
            assert peak == 1
            assert emulator.active_slots("tts") <= 1
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(WAIT):
                await process.wait()

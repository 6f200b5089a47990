"""``python -m wyoming_60db.emulator``: run the 60db emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable, Sequence

from wyoming_60db.sixtydb.limits import MCP_MIN_SPEED, STT_CONCURRENCY, TTS_CONCURRENCY

from .server import Emulator
from .settings import (
    BELOW_MINIMUM_POLICIES,
    CONCURRENCY_COUNTS,
    DEFAULT_LLM_LATENCY_MS,
    EARLY_MESSAGE_POLICIES,
    FAULT_KINDS,
    FAULT_SERVICES,
    HANDSHAKE_STYLES,
    LANGUAGES_SHAPES,
    STT_BINARY_ENCODINGS,
    STT_CONNECTED_PLACEMENTS,
    TTS_ACK_STYLES,
    TTS_ERROR_STYLES,
    VOICES_SHAPES,
    EmulatorSettings,
    Fault,
)

_LOGGER = logging.getLogger("wyoming_60db.emulator")

_FAULT_INT_OPTIONS = ("after_messages", "after_audio_bytes", "after_audio_chunks")
FAULT_HELP = (
    "arm a fault (repeatable): SERVICE:KIND[:OPT=VALUE,...], SERVICE in "
    f"{'/'.join(FAULT_SERVICES)}, KIND in {'/'.join(FAULT_KINDS)}, OPT in "
    f"{', '.join(_FAULT_INT_OPTIONS)}, times (a number or 'all'), message, code; "
    "e.g. tts:drop:after_audio_chunks=3,times=2 or stt:stall:after_messages=0"
)


def parse_fault(spec: str) -> Fault:
    """``SERVICE:KIND[:OPT=VALUE,...]`` → ``Fault`` (the ``--fault`` flag)."""
    service, _, rest = spec.partition(":")
    kind, _, options = rest.partition(":")
    if service not in FAULT_SERVICES or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"bad fault {spec!r}: expected SERVICE:KIND[:OPTS]")
    values: dict[str, int | str | None] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise argparse.ArgumentTypeError(f"bad fault option {item!r}: expected OPT=VALUE")
        values[key] = _fault_option(key, value.strip())
    try:
        return Fault(service, kind, **values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"bad fault {spec!r}: {exc}") from exc


def _fault_option(key: str, value: str) -> int | str | None:
    if key in ("message", "code"):
        return value
    if key == "times" and value == "all":
        return None
    if key not in (*_FAULT_INT_OPTIONS, "times"):
        raise argparse.ArgumentTypeError(f"unknown fault option {key!r}")
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"fault option {key} needs a number") from None


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wyoming_60db.emulator", description="Local emulator of the 60db speech API."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--api-key", help="accept only this key (default: any sk_live_/sk_test_ key)")
    p.add_argument("--balance", type=float, default=9.97, help="wallet balance; <=0 rejects")
    p.add_argument("--handshake", choices=HANDSHAKE_STYLES, default="envelope")
    p.add_argument("--stt-connected", choices=STT_CONNECTED_PLACEMENTS, default="after_start")
    p.add_argument("--early-messages", choices=EARLY_MESSAGE_POLICIES, default="drop")
    p.add_argument("--connect-latency", type=float, default=0.0, metavar="S")
    p.add_argument("--first-chunk-latency", type=float, default=0.0, metavar="S")
    p.add_argument("--chunk-gap", type=float, default=0.0, metavar="S")
    p.add_argument("--finalize-latency", type=float, default=0.0, metavar="S")
    p.add_argument(
        "--close-delay", type=float, default=0.0, metavar="S", help="delay of each close handshake"
    )
    p.add_argument("--close-tts-after-context", action="store_true")
    p.add_argument("--stt-concurrency", type=int, default=STT_CONCURRENCY)
    p.add_argument("--tts-concurrency", type=int, default=TTS_CONCURRENCY)
    p.add_argument(
        "--concurrency-counts",
        choices=CONCURRENCY_COUNTS,
        default="sessions",
        help="what the per-key limits count: STT sessions/TTS contexts, or sockets",
    )
    p.add_argument("--tts-ack-style", choices=TTS_ACK_STYLES, default="object")
    p.add_argument("--tts-error-style", choices=TTS_ERROR_STYLES, default="object")
    p.add_argument("--voices-shape", choices=VOICES_SHAPES, default="split")
    p.add_argument("--languages-shape", choices=LANGUAGES_SHAPES, default="skill")
    p.add_argument("--extra-fields", action="store_true")
    p.add_argument("--detected-language", default="en", metavar="CODE")
    p.add_argument("--llm-refine-text", action="store_true")
    p.add_argument(
        "--llm-latency-ms",
        type=_non_negative_int,
        default=DEFAULT_LLM_LATENCY_MS,
        metavar="MS",
        help="with a context: delay of the refined (canonical) final after the first emit",
    )
    p.add_argument(
        "--no-llm-refinement",
        action="store_true",
        help="a plan without LLM refinement: a context is accepted, one final per utterance",
    )
    p.add_argument("--stt-binary-encoding", choices=STT_BINARY_ENCODINGS, default="config")
    p.add_argument("--stt-encoding-aliases", action="store_true")
    p.add_argument("--utterance-end-below-min", choices=BELOW_MINIMUM_POLICIES, default="clamp")
    p.add_argument("--default-interim-ms", type=int, default=None, metavar="MS")
    p.add_argument("--tts-min-speed", type=float, default=MCP_MIN_SPEED)
    p.add_argument(
        "--fault", type=parse_fault, action="append", default=[], metavar="SPEC", help=FAULT_HELP
    )
    p.add_argument("--debug", action="store_true")
    return p


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        api_key=args.api_key,
        credit_balance=args.balance,
        handshake=args.handshake,
        stt_connected=args.stt_connected,
        early_messages=args.early_messages,
        connect_latency=args.connect_latency,
        first_chunk_latency=args.first_chunk_latency,
        chunk_gap=args.chunk_gap,
        finalize_latency=args.finalize_latency,
        close_delay=args.close_delay,
        close_tts_after_context_closed=args.close_tts_after_context,
        stt_concurrency=args.stt_concurrency,
        tts_concurrency=args.tts_concurrency,
        concurrency_counts=args.concurrency_counts,
        tts_ack_style=args.tts_ack_style,
        tts_error_style=args.tts_error_style,
        voices_shape=args.voices_shape,
        languages_shape=args.languages_shape,
        extra_fields=args.extra_fields,
        detected_language=args.detected_language,
        stt_llm_refine_text=args.llm_refine_text,
        stt_llm_latency_ms=args.llm_latency_ms,
        stt_llm_refinement=not args.no_llm_refinement,
        stt_binary_encoding=args.stt_binary_encoding,
        stt_encoding_aliases=args.stt_encoding_aliases,
        stt_utterance_end_below_min=args.utterance_end_below_min,
        stt_default_interim_ms=args.default_interim_ms,
        tts_min_speed=args.tts_min_speed,
    )


async def serve(
    settings: EmulatorSettings, host: str, port: int, faults: Iterable[Fault] = ()
) -> None:
    emulator = Emulator(settings)
    for fault in faults:
        emulator.inject_fault(fault)
    await emulator.start(host, port)
    _LOGGER.info(
        "60db emulator serving %s (ws: %s, %s)",
        emulator.base_url,
        emulator.stt_url,
        emulator.tts_url,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # e.g. Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
        _LOGGER.info("60db emulator stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings_from_args(args), args.host, args.port, args.fault))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

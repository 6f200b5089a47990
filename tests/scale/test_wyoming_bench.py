"""Smoke test with ``wyoming-bench``, the community's benchmark client, against ``--demo``.

A client nobody in this project wrote (home-assistant.md §6): its streaming TTS
sends ``synthesize-chunk``s without the compatibility ``synthesize``, it streams
STT audio faster than real time in 1024-sample chunks, and its corpus WAVs keep
their own sample rate.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soxr

from tests.scale.conftest import clean_environment, server_argv
from tests.server.conftest import WAIT, free_port

BENCH = shutil.which("wyoming-bench", path=str(Path(sys.executable).parent)) or shutil.which(
    "wyoming-bench"
)
# The tool's own sample texts (one to four sentences, 3 to 13 s of speech)
# are used throughout: its STT corpus then streams 13 s faster than real time.
SAMPLES = 4
RESULT = re.compile(r"^\[(\w+)\] ok=(\d+) fail=(\d+)$", re.MULTILINE)

pytestmark = [
    pytest.mark.skipif(
        BENCH is None, reason="wyoming-bench is not installed (pip install wyoming-bench)"
    ),
    pytest.mark.timeout(120),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``wyoming-60db --demo`` on a free loopback port: its ``HOST:PORT``."""
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_argv("--demo", "--uri", f"tcp://127.0.0.1:{port}"),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=clean_environment(),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 3 * WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the demo server did not listen"
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "Traceback" not in text and "failed" not in text, text


def bench(*argv: str) -> str:
    """Run ``wyoming-bench``; its output, once it exited cleanly."""
    assert BENCH is not None
    done = subprocess.run([BENCH, *argv], capture_output=True, text=True, timeout=90, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output, output
    return output


def results(output: str) -> dict[str, tuple[int, int]]:
    """``{mode: (ok, fail)}`` from a tts/stt summary."""
    return {mode: (int(ok), int(fail)) for mode, ok, fail in RESULT.findall(output)}


def test_info(demo: str) -> None:
    output = bench("info", demo)
    assert "asr  60db (transcript streaming)" in output
    assert "tts  60db (synthesize streaming)" in output
    assert output.count("voice ") == 8


def test_tts_both_modes(demo: str) -> None:
    output = bench("tts", demo, "--mode", "both", "--rounds", "1", "--warmup", "0")
    assert results(output) == {"non_streaming": (SAMPLES, 0), "streaming": (SAMPLES, 0)}, output
    assert re.search(r"TTFT \(ms\)\s+\d", output), output


def test_stt_on_a_corpus_made_by_our_own_tts(demo: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    output = bench("generate-corpus", demo, "--out", str(corpus))
    assert f"Wrote {SAMPLES} sample(s)" in output, output
    add_resampled_copy(corpus / "sample_02.wav", corpus / "sample_22050.wav", 22050)

    output = bench("stt", demo, "--corpus", str(corpus), "--mode", "both",
                   "--rounds", "1", "--warmup", "0")  # fmt: skip
    done = SAMPLES + 1
    assert results(output) == {"non_streaming": (done, 0), "streaming": (done, 0)}, output
    assert output.count("WER=0.0%  CER=0.0%") == 2, output


def add_resampled_copy(source: Path, target: Path, rate: int) -> None:
    """A corpus entry at another sample rate (as Piper's 22050 Hz voices make)."""
    with wave.open(str(source), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        source_rate = wav.getframerate()
    resampled = np.clip(np.round(soxr.resample(pcm, source_rate, rate)), -32768, 32767)
    with wave.open(str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(resampled.astype("<i2").tobytes())
    target.with_suffix(".txt").write_text(source.with_suffix(".txt").read_text())

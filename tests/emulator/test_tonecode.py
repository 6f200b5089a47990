"""Tone code round trips: the basis of audio-derived transcripts."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from wyoming_60db.audio import mulaw_decode_array, mulaw_encode
from wyoming_60db.emulator import tonecode

TEXT = "Turn on the lights, please! Then play 8 o'clock news?"
NORM = tonecode.normalize(TEXT)
RATES = [8000, 16000, 24000, 44100, 48000]


def test_normalize() -> None:
    assert NORM == "turn on the lights, please! then play 8 o'clock news?"
    typographic = "  H\u00e9llo\tWORLD \u2014 ok\u2019s  "
    assert tonecode.normalize(typographic) == "hllo world - ok's"
    assert tonecode.normalize("🙂") == ""


def test_frequencies_spaced_within_band() -> None:
    freqs = tonecode.FREQUENCIES
    assert len(freqs) == len(tonecode.ALPHABET)
    assert min(freqs) >= 400
    assert max(freqs) <= 3200
    assert min(np.diff(freqs)) >= 50


@pytest.mark.parametrize("rate", RATES)
def test_round_trip(rate: int) -> None:
    pcm = tonecode.encode(TEXT, rate)
    assert pcm.dtype == np.int16
    assert pcm.size == tonecode.encoded_samples(TEXT, rate, tonecode.DEFAULT_SECONDS_PER_CHAR)
    assert tonecode.decode(pcm, rate) == NORM


def test_length_proportional_to_text() -> None:
    short = tonecode.encode("hello", 16000).size
    longer = tonecode.encode("hello hello", 16000).size
    assert longer == pytest.approx(short * 11 / 5)
    # about 1 s for a 15-20 character sentence
    assert 0.9 <= tonecode.encode("turn on the light", 16000).size / 16000 <= 1.2


@pytest.mark.parametrize("rate", [8000, 16000])
def test_mulaw_round_trip(rate: int) -> None:
    pcm = tonecode.encode(TEXT, rate)
    decoded = mulaw_decode_array(mulaw_encode(pcm))
    assert tonecode.decode(decoded, rate) == NORM


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_leading_silence_quiet_and_noisy(rate: int) -> None:
    rng = np.random.default_rng(7)
    quiet = tonecode.encode(TEXT, rate).astype(np.float64) * 0.1  # -20 dB
    signal = np.concatenate([np.zeros(round(0.437 * rate)), quiet, np.zeros(rate // 3)])
    rms = np.sqrt(np.mean(quiet**2))
    noisy = signal + rng.normal(0.0, rms / 10 ** (30 / 20), signal.size)  # 30 dB SNR
    assert tonecode.decode(np.round(noisy).astype(np.int16), rate) == NORM


@pytest.mark.parametrize(
    ("src", "dst"), [(48000, 16000), (16000, 48000), (24000, 8000), (16000, 44100)]
)
def test_survives_resampling(src: int, dst: int) -> None:
    resampled = soxr.resample(tonecode.encode(TEXT, src), src, dst)
    assert tonecode.decode(resampled, dst) == NORM


def test_resampled_then_mulaw() -> None:
    pcm8 = soxr.resample(tonecode.encode(TEXT, 48000), 48000, 8000)
    decoded = mulaw_decode_array(mulaw_encode(pcm8))
    assert tonecode.decode(decoded, 8000) == NORM


def test_segments_with_gaps_are_word_separated() -> None:
    a, b = tonecode.encode("hello there.", 16000), tonecode.encode("how are you", 16000)
    joined = np.concatenate([a, np.zeros(4000, np.int16), b])
    assert tonecode.decode(joined, 16000) == "hello there. how are you"


def test_concatenated_sentences_keep_their_break() -> None:
    joined = np.concatenate([tonecode.encode("One.", 16000), tonecode.encode("Two!", 16000)])
    assert tonecode.decode(joined, 16000) == "one. two!"


def test_encode_symbols_keeps_edge_spaces() -> None:
    parts = [tonecode.encode_symbols(s, 8000) for s in ("hello ", "world", " again")]
    assert tonecode.decode(np.concatenate(parts), 8000) == "hello world again"


def test_not_tone_code() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 4000, 16000).astype(np.int16)
    assert tonecode.try_decode(noise, 16000) is None
    assert tonecode.decode(noise, 16000) == ""
    assert tonecode.try_decode(np.zeros(16000, np.int16), 16000) == ""


def test_rejects_tiny_symbol_length() -> None:
    with pytest.raises(ValueError, match="seconds_per_char"):
        tonecode.encode("hi", 16000, 0.001)


@settings(max_examples=25, deadline=None)
@given(
    st.text(alphabet=tonecode.ALPHABET + "ABC\t", min_size=1, max_size=40), st.sampled_from(RATES)
)
def test_round_trip_property(text: str, rate: int) -> None:
    assert tonecode.decode(tonecode.encode(text, rate), rate) == tonecode.normalize(text)

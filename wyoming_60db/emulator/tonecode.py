"""Tone code: text ⇄ real audio, so emulated transcripts derive from the audio received.

Each symbol of a small alphabet is one pure tone lasting ``seconds_per_char``
(one "slot"), with raised-cosine ramps so slots have no clicks and adjacent
slots are separated by an energy dip the decoder can lock onto.  A sentence end
(".?!" before a space) is followed by one silent slot.  Frequencies lie in 450-2970 Hz,
60 Hz apart, so they survive 8 kHz μ-law and any proper resampler.

The decoder finds the first onset, then walks slot by slot, re-aligning on the
inter-slot energy dip (tolerates resampling drift and arbitrary gaps), and
classifies the central half of each slot by correlating against every table
frequency.  A voiced slot whose energy is not concentrated at one table
frequency means "this is not tone code" (``try_decode`` returns None).
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
import numpy.typing as npt

ALPHABET: Final = " abcdefghijklmnopqrstuvwxyz0123456789.,?!'-"
SENTENCE_END: Final = ".?!"
BASE_HZ: Final = 450.0
STEP_HZ: Final = 60.0
FREQUENCIES: Final = tuple(BASE_HZ + STEP_HZ * i for i in range(len(ALPHABET)))
# 60 ms per character ≈ 1 s of audio for a 16-17 character sentence; integer
# slot lengths at 8/16/24/44.1/48 kHz keep concatenated segments aligned.
DEFAULT_SECONDS_PER_CHAR: Final = 0.06
MIN_SECONDS_PER_CHAR: Final = 0.02  # below this the FFT cannot separate 60 Hz steps

_AMPLITUDE: Final = 0.5 * 32767  # -9 dBFS RMS: loud, yet far from μ-law clipping
_RAMP_SECONDS: Final = 0.005
_ENVELOPE_SECONDS: Final = 0.003  # short power window: resolves the inter-slot dip
_RELATIVE_THRESHOLD: Final = 10 ** (-15 / 10)  # voiced = within 15 dB of the loudest
_ABSOLUTE_FLOOR: Final = (32768 * 10 ** (-60 / 20)) ** 2  # -60 dBFS: digital silence
_MIN_PURITY: Final = 0.5

# Typographic apostrophes and dashes map onto the alphabet's ' and -.
_TRANSLATE: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u2013": "-", "\u2014": "-"})

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]
SlotMemo = dict[int, tuple[str, float]]
"""Slot classifications by position, shared by decodes of one growing recording.

A recognizer's interim results decode its utterance again and again as it
grows; with a memo each decode classifies only the slots it has not seen, so an
utterance streamed faster than real time costs linear, not quadratic, time."""


def normalize(text: str) -> str:
    """Reduce text to the alphabet: lowercase, known punctuation, single spaces."""
    lowered = text.translate(_TRANSLATE).lower()
    kept = "".join(c if c in ALPHABET else (" " if c.isspace() else "") for c in lowered)
    return " ".join(kept.split())


def slot_samples(rate: int, seconds_per_char: float) -> int:
    if seconds_per_char < MIN_SECONDS_PER_CHAR:
        raise ValueError(f"seconds_per_char must be >= {MIN_SECONDS_PER_CHAR}")
    return max(8, round(seconds_per_char * rate))


def encoded_samples(text: str, rate: int, seconds_per_char: float) -> int:
    """Length in samples of ``encode(text, …)`` without synthesising it."""
    return _slot_count(normalize(text)) * slot_samples(rate, seconds_per_char)


def _slot_count(norm: str) -> int:
    pauses = sum(1 for i in range(len(norm)) if _pause_after(norm, i))
    return len(norm) + pauses


def _pause_after(norm: str, i: int) -> bool:
    """A sentence end before a space or at the end gets a silent slot ("3.5" does not).

    The final pause keeps separately synthesised sentences apart when their
    audio is concatenated ("one." + "two." decodes as "one. two.").
    """
    return norm[i] in SENTENCE_END and norm[i + 1 : i + 2] in (" ", "")


@functools.lru_cache(maxsize=512)
def _tone(symbol: str, rate: int, slot: int) -> Int16Array:
    freq = FREQUENCIES[ALPHABET.index(symbol)]
    t = np.arange(slot, dtype=np.float64) / rate
    envelope = np.ones(slot)
    ramp = min(round(_RAMP_SECONDS * rate), slot // 4)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        envelope[:ramp] = rise
        envelope[-ramp:] = rise[::-1]
    wave = _AMPLITUDE * envelope * np.sin(2 * np.pi * freq * t)
    tone: Int16Array = np.round(wave).astype(np.int16)
    tone.flags.writeable = False
    return tone


def encode(text: str, rate: int, seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR) -> Int16Array:
    """Tone-code ``text`` (normalised) as mono int16 samples at ``rate``."""
    return encode_symbols(normalize(text), rate, seconds_per_char)


def encode_symbols(
    symbols: str, rate: int, seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR
) -> Int16Array:
    """Tone-code ``symbols`` verbatim (every character must be in ``ALPHABET``).

    Unlike ``encode`` this keeps leading/trailing spaces, so a stream flushed
    as "hello " + "world" still decodes with its word break.
    """
    slot = slot_samples(rate, seconds_per_char)
    out = np.zeros(_slot_count(symbols) * slot, dtype=np.int16)
    pos = 0
    for i, symbol in enumerate(symbols):
        out[pos : pos + slot] = _tone(symbol, rate, slot)
        pos += slot
        if _pause_after(symbols, i):
            pos += slot  # a silent slot: a sentence pause
    return out


def decode(
    pcm: npt.NDArray[np.generic],
    rate: int,
    seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR,
    *,
    memo: SlotMemo | None = None,
) -> str:
    """Text carried by ``pcm``; "" for silence or audio that is not tone code.

    ``memo`` may only be shared by decodes of prefixes of the same audio (at the
    same rate and ``seconds_per_char``): a slot's samples are then the same.
    """
    return try_decode(pcm, rate, seconds_per_char, memo=memo) or ""


def try_decode(
    pcm: npt.NDArray[np.generic],
    rate: int,
    seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR,
    *,
    memo: SlotMemo | None = None,
) -> str | None:
    """Like ``decode`` but None when voiced audio is not tone code."""
    x = np.asarray(pcm, dtype=np.float64)
    slot = slot_samples(rate, seconds_per_char)
    if x.size < slot // 2:
        return ""
    env = _power_envelope(x, max(1, round(_ENVELOPE_SECONDS * rate)))
    peak = float(env.max())
    if peak < _ABSOLUTE_FLOOR:
        return ""
    threshold = max(peak * _RELATIVE_THRESHOLD, _ABSOLUTE_FLOOR)
    symbols = _walk(x, env, threshold, rate, slot, memo={} if memo is None else memo)
    if symbols is None:
        return None
    return " ".join("".join(symbols).split())


def _walk(
    x: FloatArray, env: FloatArray, threshold: float, rate: int, slot: int, *, memo: SlotMemo
) -> list[str] | None:
    """Slot-by-slot decode from the first onset, re-syncing after silent slots."""
    out: list[str] = []
    pos = _find_onset(env, threshold, 0)
    quarter, half = slot // 4, slot // 2
    while pos is not None:
        while pos + quarter + half <= x.size:
            centre = x[pos + quarter : pos + quarter + half]
            if float(np.mean(centre * centre)) < threshold:
                break  # a silent slot: pause or end of a segment
            known = memo.get(pos)
            if known is None:
                known = memo[pos] = _classify(centre, rate)
            symbol, purity = known
            if purity < _MIN_PURITY:
                return None
            out.append(symbol)
            pos = _next_boundary(env, pos + slot, quarter)
        else:
            return out
        out.append(" ")  # a pause separates words (collapsed later if doubled)
        pos = _find_onset(env, threshold, pos + half)
    return out


def _power_envelope(x: FloatArray, width: int) -> FloatArray:
    """Centred moving mean of x² (cumulative-sum form: O(n))."""
    csum = np.concatenate(([0.0], np.cumsum(x * x)))
    n = x.size
    lo = np.clip(np.arange(n) - width // 2, 0, n)
    hi = np.clip(lo + width, 0, n)
    result: FloatArray = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    return result


def _find_onset(env: FloatArray, threshold: float, start: int) -> int | None:
    if start >= env.size:
        return None
    above = np.flatnonzero(env[start:] >= threshold)
    return int(start + above[0]) if above.size else None


def _next_boundary(env: FloatArray, expected: int, tolerance: int) -> int:
    """The energy dip between slots nearest ``expected`` (corrects drift)."""
    lo = max(0, expected - tolerance)
    hi = min(env.size, expected + tolerance)
    if hi - lo < 2:
        return expected
    return int(lo + np.argmin(env[lo:hi]))


@functools.lru_cache(maxsize=64)
def _analysis_basis(rate: int, length: int) -> tuple[npt.NDArray[np.complex128], FloatArray, float]:
    window: FloatArray = np.hanning(length)
    n = np.arange(length)
    phase = -2j * np.pi * np.outer(np.asarray(FREQUENCIES), n) / rate
    basis: npt.NDArray[np.complex128] = (np.exp(phase) * window).astype(np.complex128)
    # A pure tone exactly at a table frequency has purity 1 under this norm.
    norm = float(window.sum() ** 2 / (2 * (window**2).sum()))
    return basis, window, norm


def _classify(segment: FloatArray, rate: int) -> tuple[str, float]:
    basis, window, norm = _analysis_basis(rate, segment.size)
    # einsum, not @: BLAS threads make this tiny product erratic on a busy machine.
    powers = np.abs(np.einsum("ij,j->i", basis, segment)) ** 2
    best = int(np.argmax(powers))
    windowed = segment * window
    energy = float(windowed @ windowed) * norm
    purity = float(powers[best]) / energy if energy > 0 else 0.0
    return ALPHABET[best], purity

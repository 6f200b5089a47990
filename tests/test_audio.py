"""Tests for wyoming_60db.audio: μ-law codec, streaming conversion, re-framing."""

from __future__ import annotations

import importlib
import itertools
import subprocess
import sys
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wyoming_60db.audio import (
    AudioConverter,
    FrameChunker,
    PcmFormat,
    UnsupportedAudioFormat,
    convert_all,
    frame_bytes_for,
    mulaw_decode,
    mulaw_decode_array,
    mulaw_encode,
)

ALL_PCM16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def _audioop() -> ModuleType:
    """Stdlib audioop (<= 3.12) or the audioop-lts backport (3.13+), else skip."""
    try:
        return importlib.import_module("audioop")
    except ImportError:
        pytest.skip("neither audioop nor audioop-lts is installed")


# ---------------------------------------------------------------------------
# Independent per-sample port of ITU-T G.191 g711.c (14-bit domain, as in C)
# ---------------------------------------------------------------------------


def g191_ulaw_compress(sample: int) -> int:
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    code = (high_nibble << 4) | low_nibble
    if sample >= 0:
        code |= 0x0080
    return code


def g191_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x0080 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


# ---------------------------------------------------------------------------
# μ-law
# ---------------------------------------------------------------------------


def test_mulaw_encode_matches_g191_for_every_sample() -> None:
    expected = bytes(g191_ulaw_compress(int(x)) for x in ALL_PCM16)
    assert mulaw_encode(ALL_PCM16.astype("<i2").tobytes()) == expected


def test_mulaw_decode_matches_g191_for_every_code() -> None:
    expected = np.array([g191_ulaw_expand(c) for c in ALL_CODES], dtype="<i2")
    assert mulaw_decode(ALL_CODES) == expected.tobytes()
    assert np.array_equal(mulaw_decode_array(ALL_CODES), expected)


def test_mulaw_decode_matches_audioop_for_every_code() -> None:
    audioop = _audioop()
    assert mulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_audioop_encoder_is_g191_with_negative_samples_shifted_one_step() -> None:
    """audioop (Sun g711.c) negates negative samples where G.191 takes ~x.

    That makes its 14-bit magnitude exactly one larger for every negative
    sample, i.e. audioop(x) == G.191(x - 4) for x < 0.  Checking this over all
    inputs pins down the only difference between the two references.
    """
    audioop = _audioop()
    theirs = audioop.lin2ulaw(ALL_PCM16.astype("<i2").tobytes(), 2)
    shifted = bytes(g191_ulaw_compress(int(x) if x >= 0 else int(x) - 4) for x in ALL_PCM16)
    assert theirs == shifted


def test_mulaw_encode_differs_from_audioop_only_by_one_step_on_negatives() -> None:
    audioop = _audioop()
    ours = np.frombuffer(mulaw_encode(ALL_PCM16), dtype=np.uint8)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_PCM16.astype("<i2").tobytes(), 2), np.uint8)
    differs = ours != theirs
    assert not differs[ALL_PCM16 >= 0].any()
    assert differs.sum() < 0.01 * ALL_PCM16.size
    # Adjacent codes = one quantisation step, never a sign flip or a jump.
    assert np.all(np.abs(ours[differs].astype(int) - theirs[differs]) == 1)
    assert np.all(ours[differs] < 0x80)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype("<i2").tobytes(),
        lambda a: bytearray(a.astype("<i2").tobytes()),
        lambda a: memoryview(a.astype("<i2").tobytes()),
        lambda a: a,
        lambda a: a.astype(">i2"),  # values, not raw bytes, count for arrays
        lambda a: np.repeat(a, 2)[::2],  # strided, non-contiguous view
    ],
)
def test_mulaw_encode_accepts_buffers_and_arrays(convert: object) -> None:
    samples = np.random.default_rng(1).integers(-32768, 32768, 999).astype(np.int16)
    expected = bytes(g191_ulaw_compress(int(x)) for x in samples)
    assert mulaw_encode(convert(samples)) == expected  # type: ignore[operator]


def test_mulaw_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="even byte length"):
        mulaw_encode(b"\x00\x01\x02")
    with pytest.raises(TypeError, match="int16"):
        mulaw_encode(np.zeros(4, dtype=np.float32))


def test_mulaw_round_trip_error_is_within_half_a_step() -> None:
    decoded = np.frombuffer(mulaw_decode(mulaw_encode(ALL_PCM16)), dtype="<i2").astype(int)
    error = np.abs(decoded - ALL_PCM16)
    # Largest step is 1024 (top segment); clipping adds a little at full scale.
    assert error[np.abs(ALL_PCM16.astype(int)) < 32000].max() <= 512


# ---------------------------------------------------------------------------
# Formats and validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (PcmFormat(7999, 2, 1), "rate 7999"),
        (PcmFormat(48001, 2, 1), "rate 48001"),
        (PcmFormat(16000, 5, 1), "width 5"),
        (PcmFormat(16000, 0, 1), "width 0"),
        (PcmFormat(16000, 2, 3), "3 channels"),
        (PcmFormat(16000, 2, 0), "0 channels"),
    ],
)
def test_unsupported_format_raises_clear_value_error(fmt: PcmFormat, message: str) -> None:
    with pytest.raises(UnsupportedAudioFormat, match=message) as info:
        AudioConverter(fmt, 16000)
    assert isinstance(info.value, ValueError)


def test_unsupported_target_rate_raises() -> None:
    with pytest.raises(UnsupportedAudioFormat, match="rate 96000"):
        AudioConverter(PcmFormat(16000, 2, 1), 96000)


def test_frame_bytes_for() -> None:
    assert frame_bytes_for(16000, 2, 1, 40) == 1280
    assert frame_bytes_for(48000, 3, 2, 10) == 480 * 6
    assert frame_bytes_for(22050, 2, 1, 10) == 220 * 2  # whole frames only
    assert frame_bytes_for(8000, 1, 1, 1) == 8
    with pytest.raises(ValueError, match="positive"):
        frame_bytes_for(16000, 2, 1, 0)
    with pytest.raises(UnsupportedAudioFormat):
        frame_bytes_for(16000, 2, 7, 10)


# ---------------------------------------------------------------------------
# Signal helpers
# ---------------------------------------------------------------------------


def sine(freq: float, rate: int, seconds: float, amplitude: float) -> npt.NDArray[np.float64]:
    t = np.arange(round(rate * seconds)) / rate
    return np.asarray(amplitude * np.sin(2 * np.pi * freq * t + 0.3))


def pack(channels: list[npt.NDArray[np.float64]], width: int) -> bytes:
    """Interleave float channels (int16 scale) into PCM of the given width."""
    frames = np.stack(channels, axis=1)
    if width == 1:
        return np.clip(np.rint(frames / 256 + 128), 0, 255).astype(np.uint8).tobytes()
    scaled = np.rint(frames * (1 << (8 * (width - 2))))
    wide = scaled.astype("<i4").view(np.uint8).reshape(*frames.shape, 4)
    return wide[..., :width].tobytes()  # little-endian: the low bytes hold the value


def pcm16(data: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def steady(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """Drop 50 ms at each end (filter warm-up and tail)."""
    edge = rate // 20
    return samples[edge:-edge]


def sine_snr_db(samples: npt.NDArray[np.float64], freq: float, rate: int) -> float:
    """SNR against the least-squares sine at `freq` (free phase absorbs the delay)."""
    t = np.arange(samples.size) / rate
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef, *_ = np.linalg.lstsq(basis, samples, rcond=None)
    fitted = basis @ coef
    noise = samples - fitted
    return float(10 * np.log10(np.sum(fitted**2) / max(float(np.sum(noise**2)), 1e-9)))


def rms_db(samples: npt.NDArray[np.float64]) -> float:
    return float(10 * np.log10(max(float(np.mean(samples**2)), 1e-12)))


def convert_in_chunks(data: bytes, fmt: PcmFormat, target: int, sizes: list[int]) -> bytes:
    """Feed `data` cycling through chunk `sizes` (bytes), then flush."""
    converter = AudioConverter(fmt, target)
    out = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(converter.convert(data[pos : pos + size]))
        pos += size
        i += 1
    out.append(converter.flush())
    return b"".join(out)


# ---------------------------------------------------------------------------
# Resampling quality
# ---------------------------------------------------------------------------

MONO_48K = PcmFormat(48000, 2, 1)


def test_48k_to_16k_rejects_10khz_tone_by_50db() -> None:
    tone = sine(10_000, 48000, 1.0, 16000)
    out = pcm16(convert_all(pack([tone], 2), MONO_48K, 16000))
    assert rms_db(steady(tone, 48000)) - rms_db(steady(out, 16000)) >= 50


@pytest.mark.parametrize(
    "chunk_bytes",
    [
        [96000],  # one shot: 1 s of 48 kHz PCM16
        [960],  # 10 ms
        [672],  # 7 ms
        [333],  # odd: splits samples
        [1, 2, 333, 5000, 7],  # mixed
    ],
)
def test_48k_to_16k_passes_1khz_cleanly_at_any_chunking(chunk_bytes: list[int]) -> None:
    data = pack([sine(1000, 48000, 1.0, 16000)], 2)
    one_shot = convert_all(data, MONO_48K, 16000)
    chunked = convert_in_chunks(data, MONO_48K, 16000, chunk_bytes)
    # float32 soxr is deterministic across chunkings: seams cannot click.
    assert chunked == one_shot
    out = pcm16(chunked)
    assert abs(out.size - 16000) <= 2
    assert sine_snr_db(steady(out, 16000), 1000, 16000) >= 40


@pytest.mark.parametrize(
    ("source_rate", "target_rate", "alias_freq"),
    [
        (8000, 16000, None),
        (22050, 16000, 9_500.0),
        (44100, 16000, 12_000.0),
        (16000, 8000, 5_000.0),
        (48000, 8000, 6_000.0),
    ],
)
def test_other_rate_pairs(source_rate: int, target_rate: int, alias_freq: float | None) -> None:
    fmt = PcmFormat(source_rate, 2, 1)
    out = pcm16(
        convert_in_chunks(pack([sine(1000, source_rate, 1, 16000)], 2), fmt, target_rate, [441])
    )
    assert abs(out.size - target_rate) <= 2
    assert sine_snr_db(steady(out, target_rate), 1000, target_rate) >= 40
    if alias_freq is not None:  # a tone above the new Nyquist must not fold back
        tone = sine(alias_freq, source_rate, 1, 16000)
        folded = pcm16(convert_all(pack([tone], 2), fmt, target_rate))
        assert rms_db(steady(tone, source_rate)) - rms_db(steady(folded, target_rate)) >= 50


def test_upsampling_8k_suppresses_the_image() -> None:
    out = pcm16(convert_all(pack([sine(1000, 8000, 1, 16000)], 2), PcmFormat(8000, 2, 1), 16000))
    body = steady(out, 16000)
    # The 1 kHz tone's image at 8000 - 1000 Hz must be gone.
    image = body - _fit(body, 1000, 16000)
    assert rms_db(_fit(body, 7000, 16000)) <= rms_db(body) - 50
    assert rms_db(image) <= rms_db(body) - 40


def _fit(samples: npt.NDArray[np.float64], freq: float, rate: int) -> npt.NDArray[np.float64]:
    t = np.arange(samples.size) / rate
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef, *_ = np.linalg.lstsq(basis, samples, rcond=None)
    return np.asarray(basis @ coef)


def test_stereo_24bit_48k_to_16k_mono() -> None:
    tone = sine(1000, 48000, 1, 12000)
    hiss = np.random.default_rng(2).normal(0, 3000, tone.size)
    # Anti-phase noise cancels in the mono mix; the tone must remain.
    data = pack([tone + hiss, tone - hiss], 3)
    fmt = PcmFormat(48000, 3, 2)
    out = pcm16(convert_in_chunks(data, fmt, 16000, [480 * 6, 1001]))
    assert abs(out.size - 16000) <= 2
    assert sine_snr_db(steady(out, 16000), 1000, 16000) >= 40
    reference = pcm16(convert_all(pack([tone], 2), MONO_48K, 16000))
    assert np.max(np.abs(out - reference)) <= 4  # 24->16 truncation + mix rounding


def test_8bit_unsigned_8k_to_16k() -> None:
    tone = sine(440, 8000, 1, 25000)
    out = pcm16(convert_in_chunks(pack([tone], 1), PcmFormat(8000, 1, 1), 16000, [80, 3]))
    body = steady(out, 16000)
    assert abs(np.mean(body)) < 200  # 128 is silence: no DC offset
    assert sine_snr_db(body, 440, 16000) >= 30  # 8-bit source limits SNR to ~40 dB
    assert np.max(np.abs(_fit(body, 440, 16000))) == pytest.approx(25000, rel=0.05)


def test_8bit_stereo_resampled_matches_mono() -> None:
    tone = sine(500, 16000, 0.5, 20000)
    stereo = pcm16(convert_all(pack([tone, tone], 1), PcmFormat(16000, 1, 2), 8000))
    mono = pcm16(convert_all(pack([tone], 1), PcmFormat(16000, 1, 1), 8000))
    assert np.array_equal(stereo, mono)


def test_full_scale_stereo_does_not_wrap() -> None:
    for level in (32767, -32768):
        block = np.full(4800, float(level))
        for rate in (16000, 48000):  # integer path and resampling path
            out = pcm16(convert_all(pack([block, block], 2), PcmFormat(rate, 2, 2), 16000))
            assert np.all(steady(out, 16000) == level)


def test_resampler_overshoot_is_clipped_not_wrapped() -> None:
    square = np.sign(sine(1000, 48000, 0.5, 1.0))
    full = pcm16(convert_all(pack([square * 32767] * 2, 2), PcmFormat(48000, 2, 2), 16000))
    half = pcm16(convert_all(pack([square * 16383.5] * 2, 2), PcmFormat(48000, 2, 2), 16000))
    assert np.max(np.abs(2 * half)) > 33000  # the filter's ringing overshoots full scale
    assert np.max(np.abs(full - np.clip(2 * half, -32768, 32767))) <= 3


@pytest.mark.parametrize("level", [-20001, -3, 1, 777, 12345])
def test_resampled_dc_level_is_exact(level: int) -> None:
    """Rounding, not truncation: a constant must come out unchanged."""
    block = np.full(24000, float(level))
    for source in (PcmFormat(48000, 2, 1), PcmFormat(22050, 2, 2), PcmFormat(8000, 2, 1)):
        out = pcm16(convert_all(pack([block] * source.channels, 2), source, 16000))
        assert np.all(steady(out, 16000) == level)


# ---------------------------------------------------------------------------
# Exact conversions without resampling
# ---------------------------------------------------------------------------


def test_width_and_channel_conversion_is_exact() -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, 6 * 1000, dtype=np.uint8).tobytes()
    wide = np.frombuffer(raw, np.uint8)

    def top16(width: int, channels: int) -> npt.NDArray[np.int64]:
        frames = wide.reshape(-1, channels, width)
        hi = frames[..., width - 1].astype(np.int64)
        lo = frames[..., width - 2].astype(np.int64)
        return ((hi << 8) | lo) - ((hi >= 128) << 16)

    for width in (2, 3):
        mono = pcm16(convert_all(raw, PcmFormat(16000, width, 1), 16000))
        assert np.array_equal(mono, top16(width, 1)[:, 0])
        stereo = pcm16(convert_all(raw, PcmFormat(16000, width, 2), 16000))
        pair = top16(width, 2)
        assert np.array_equal(stereo, (pair[:, 0] + pair[:, 1]) // 2)
    eight = pcm16(convert_all(raw, PcmFormat(16000, 1, 1), 16000))
    assert np.array_equal(eight, (wide.astype(np.int64) - 128) * 256)
    eight_stereo = pcm16(convert_all(raw, PcmFormat(16000, 1, 2), 16000))
    pairs = wide.reshape(-1, 2).astype(np.int64) - 128
    assert np.array_equal(eight_stereo, (pairs[:, 0] + pairs[:, 1]) * 128)


@pytest.mark.parametrize(("width", "channels"), [(1, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)])
def test_width_and_channel_conversion_matches_audioop(width: int, channels: int) -> None:
    audioop = _audioop()
    raw = np.random.default_rng(4).integers(0, 256, 24 * 500, dtype=np.uint8).tobytes()
    expected = audioop.bias(raw, 1, -128) if width == 1 else raw
    expected = audioop.lin2lin(expected, width, 2)
    if channels == 2:
        expected = audioop.tomono(expected, 2, 0.5, 0.5)
    assert convert_all(raw, PcmFormat(16000, width, channels), 16000) == expected


def test_flush_resets_for_a_new_stream() -> None:
    data = pack([sine(700, 44100, 0.3, 9000)], 2)
    converter = AudioConverter(PcmFormat(44100, 2, 1), 16000)
    first = converter.convert(data[:1001]) + converter.convert(data[1001:]) + converter.flush()
    second = converter.convert(data) + converter.flush()
    assert first == second == convert_all(data, PcmFormat(44100, 2, 1), 16000)
    assert converter.flush() == b""


def test_partial_frame_waits_for_next_chunk_and_is_dropped_at_flush() -> None:
    converter = AudioConverter(PcmFormat(16000, 3, 2), 16000)
    frame = pack([np.array([1000.0]), np.array([3000.0])], 3)
    assert converter.convert(frame[:4]) == b""
    assert pcm16(converter.convert(frame[4:] + frame[:1])).tolist() == [2000]
    assert converter.flush() == b""  # the lone byte cannot form a frame


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

FORMATS = [
    PcmFormat(48000, 2, 1),
    PcmFormat(48000, 2, 2),
    PcmFormat(44100, 3, 2),
    PcmFormat(22050, 2, 1),
    PcmFormat(8000, 1, 1),
    PcmFormat(16000, 4, 2),
    PcmFormat(16000, 2, 1),
]


def noise_stream(fmt: PcmFormat, frames: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, frames * fmt.frame_bytes, dtype=np.uint8).tobytes()


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    frames=st.integers(0, 3000),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.floats(0, 1), max_size=12),
)
def test_any_chunking_gives_one_shot_output(
    fmt: PcmFormat, frames: int, seed: int, cuts: list[float]
) -> None:
    data = noise_stream(fmt, frames, seed)
    points = sorted({int(c * len(data)) for c in cuts} | {0, len(data)})
    converter = AudioConverter(fmt, 16000)
    chunked = b"".join(converter.convert(data[a:b]) for a, b in itertools.pairwise(points))
    chunked += converter.flush()
    assert chunked == convert_all(data, fmt, 16000)


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS), target=st.sampled_from([8000, 16000]), frames=st.integers(0, 5000)
)
def test_output_length_follows_rate_ratio(fmt: PcmFormat, target: int, frames: int) -> None:
    out = convert_all(noise_stream(fmt, frames, frames), fmt, target)
    assert len(out) % 2 == 0
    assert abs(len(out) // 2 - frames * target / fmt.rate) <= 2


@given(data=st.binary(max_size=500), rate=st.sampled_from([8000, 16000, 48000]))
def test_passthrough_returns_the_same_object(data: bytes, rate: int) -> None:
    converter = AudioConverter(PcmFormat(rate, 2, 1), rate)
    assert converter.passthrough
    assert converter.convert(data) is data
    assert converter.flush() == b""


def test_non_passthrough_formats_say_so() -> None:
    assert not AudioConverter(PcmFormat(16000, 2, 2), 16000).passthrough
    assert not AudioConverter(PcmFormat(16000, 3, 1), 16000).passthrough
    assert not AudioConverter(PcmFormat(48000, 2, 1), 16000).passthrough


@given(
    size=st.integers(1, 64),
    pieces=st.lists(st.binary(max_size=200), max_size=20),
    as_view=st.booleans(),
)
def test_frame_chunker_keeps_every_byte_in_order(
    size: int, pieces: list[bytes], as_view: bool
) -> None:
    chunker = FrameChunker(size)
    frames: list[bytes] = []
    for piece in pieces:
        frames.extend(chunker.push(memoryview(piece) if as_view else piece))
        assert chunker.pending < size
    rest = chunker.flush()
    assert all(isinstance(f, bytes) and len(f) == size for f in frames)
    assert len(rest) < size
    assert b"".join(frames) + rest == b"".join(pieces)
    assert chunker.flush() == b""


def test_frame_chunker_passes_aligned_frames_without_copying() -> None:
    chunker = FrameChunker(4)
    frame = b"abcd"
    assert chunker.push(frame)[0] is frame
    assert chunker.push(b"ab") == []
    assert chunker.push(b"cdefghij") == [b"abcd", b"efgh"]
    assert chunker.flush() == b"ij"


def test_frame_chunker_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameChunker(0)


def test_module_is_self_contained_and_imports_soxr_lazily() -> None:
    code = (
        "import sys, wyoming_60db.audio as a;"
        "print('soxr' in sys.modules, any(m.split('.')[0] == 'wyoming' for m in sys.modules));"
        "a.AudioConverter(a.PcmFormat(8000, 2, 1), 16000);"
        "print('soxr' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.split() == ["False", "False", "True"]

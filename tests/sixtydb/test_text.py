"""Long text is split at sentence boundaries, and nothing is lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wyoming_60db.sixtydb.text import split_text


def test_sentences_are_packed_up_to_the_limit() -> None:
    text = "One two. Three four five. Six."
    assert split_text(text, limit=20) == ["One two.", "Three four five.", "Six."]
    assert split_text(text, limit=100) == [text]


def test_overlong_words_and_sentences_are_cut() -> None:
    assert split_text("a" * 25 + " bb cc", limit=10) == ["a" * 10, "a" * 10, "aaaaa bb", "cc"]


def test_empty_text() -> None:
    assert split_text("  ") == []


@given(st.text(alphabet=st.sampled_from("ab .!?\n"), max_size=300), st.integers(5, 60))
def test_nothing_is_lost_and_limits_hold(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())

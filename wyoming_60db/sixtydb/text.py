"""Splitting text for synthesis at sentence boundaries."""

from __future__ import annotations

from collections.abc import Iterator

from sentence_stream import stream_to_sentences

from .limits import FLUSH_CHARS


def split_text(text: str, limit: int = FLUSH_CHARS) -> list[str]:
    """Whole sentences packed into pieces of at most ``limit`` characters.

    A sentence longer than ``limit`` is cut between words, and a single word
    longer than ``limit`` is cut hard: nothing is dropped.
    """
    pieces: list[str] = []
    current = ""
    for sentence in _sentences(text):
        for part in _fit(sentence, limit):
            if current and len(current) + 1 + len(part) > limit:
                pieces.append(current)
                current = part
            else:
                current = f"{current} {part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def _sentences(text: str) -> Iterator[str]:
    for sentence in stream_to_sentences([text]):
        stripped = sentence.strip()
        if stripped:
            yield stripped


def _fit(sentence: str, limit: int) -> Iterator[str]:
    if len(sentence) <= limit:
        yield sentence
        return
    line = ""
    for whole_word in sentence.split():
        word = whole_word
        while len(word) > limit:
            if line:
                yield line
                line = ""
            yield word[:limit]
            word = word[limit:]
        if line and len(line) + 1 + len(word) > limit:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line

"""Words 60db should hear as written: ``context.terms`` of an STT ``start`` (§2.3.1).

Both front ends collect names (Wyoming 1.10's ``transcript_names`` and
``transcript_terms``; Home Assistant's areas, floors and entities) and pass
them through :func:`context_terms`, so what reaches 60db is bounded and clean
whichever side it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .limits import MAX_CONTEXT_TERMS, MAX_TERM_CHARS


def context_terms(*groups: Iterable[str]) -> list[str]:
    """The terms of ``groups``, cleaned, once each, at most ``MAX_CONTEXT_TERMS``.

    Earlier groups come first and so survive the cap: pass names before
    terms. Whitespace is collapsed; empty and over-long terms are dropped,
    because cutting a name would boost a word nobody says; duplicates that
    differ only in case keep their first spelling.
    """
    seen: set[str] = set()
    terms: list[str] = []
    for group in groups:
        for raw in group:
            term = " ".join(raw.split())
            key = term.casefold()
            if not term or len(term) > MAX_TERM_CHARS or key in seen:
                continue
            seen.add(key)
            terms.append(term)
            if len(terms) == MAX_CONTEXT_TERMS:
                return terms
    return terms


def stt_context(terms: Sequence[str]) -> dict[str, Any] | None:
    """The ``context`` object for ``terms``, or ``None`` when there are none.

    A context switches 60db to two finals per utterance (§2.5), so an empty
    one is not sent at all.
    """
    return {"terms": list(terms)} if terms else None

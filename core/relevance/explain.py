"""Explanations a reader understands: which words counted, and one line saying why.

A story's explanation keeps the numbers (rounded) for those who tune a search, and
``reason``, one line for everyone (``matched “economy”, “shares” in the title; your
feedback raised it``), which every digest format shows. Words learned from the stream
are only listed when a reader can make sense of them: no numbers, no stop words, none
shorter than ``MIN_WORD_LENGTH`` and none rarer than ``RELATED_WORD_MIN_DOCS`` entries
of the stream (a word seen once or twice is more often a name or a typo than a topic).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

#: Fewest stream entries a learned word must appear in to be shown.
RELATED_WORD_MIN_DOCS = 5
#: Shortest learned word shown.
MIN_WORD_LENGTH = 3
#: Words of each kind named in a reason.
REASON_WORDS = 3
#: Smallest change of the score by feedback that a reason mentions.
REASON_MIN_EFFECT = 0.02
#: Label of the learned words in an explanation.
RELATED_WORDS_LABEL = "related words learned from this search's stream"
#: Label of the words feedback weighed in an explanation.
FEEDBACK_WORDS_LABEL = "words your feedback weighed in this story"


def quoted(words: Sequence[str]) -> str:
    """``“a”, “b”`` (typographic quotes: no medium gives them a meaning)."""
    return ", ".join(f"\u201c{word}\u201d" for word in words)


def readable_columns(vectorizer: TfidfVectorizer, documents: int) -> np.ndarray[Any, Any]:
    """Which vocabulary words may be shown as learned words (see the module docstring)."""
    names = vectorizer.get_feature_names_out()
    # TF-IDF's smoothed idf = ln((1 + n) / (1 + df)) + 1, solved for df.
    frequency = (1.0 + documents) / np.exp(np.asarray(vectorizer.idf_) - 1.0) - 1.0
    shape = np.fromiter(
        (
            len(word) >= MIN_WORD_LENGTH and word.isalpha() and word not in ENGLISH_STOP_WORDS
            for word in names
        ),
        dtype=bool,
        count=len(names),
    )
    return np.asarray(shape & (frequency >= RELATED_WORD_MIN_DOCS - 0.5))


def strongest(
    columns: np.ndarray[Any, Any],
    values: np.ndarray[Any, Any],
    names: Sequence[str],
    count: int,
) -> list[tuple[str, float]]:
    """The ``count`` largest ``values`` (positive only) with their words, ties by word."""
    keep = values > 0
    columns, values = columns[keep], values[keep]
    order = np.lexsort((columns, -values))[:count]
    return [(str(names[columns[i]]), float(values[i])) for i in order]


def reason(
    *,
    title_hits: Sequence[str],
    text_terms: Sequence[str],
    related: Sequence[str],
    feedback_effect: float | None,
    suggested: bool,
    filtered: str | None,
) -> str:
    """The one-line reason of a story's score and fate."""
    parts: list[str] = []
    if suggested:
        liked = f" ({quoted(related[:REASON_WORDS])})" if related else ""
        parts.append(f"no query word, but like the stories you marked relevant{liked}")
    else:
        matched = []
        if title_hits:
            matched.append(f"{quoted(title_hits[:REASON_WORDS])} in the title")
        if text_terms:
            matched.append(f"{quoted(text_terms[:REASON_WORDS])} in the text")
        if matched:
            parts.append("matched " + " and ".join(matched))
        if related:
            parts.append(f"related words {quoted(related[:REASON_WORDS])}")
        if feedback_effect is not None and abs(feedback_effect) >= REASON_MIN_EFFECT:
            parts.append(f"your feedback {'raised' if feedback_effect > 0 else 'lowered'} it")
    if filtered:
        parts.append(f"held back: {filtered}")
    return "; ".join(parts) or "every entry matches a search without query words"

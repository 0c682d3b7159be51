"""Explanations a reader understands: which words counted, and one line saying why.

A story's explanation keeps the numbers (rounded) for those who tune a search, and
``reason``, one line for everyone (``matched “economy”, “shares” in the title; your
feedback raised it``), which every digest format shows. Words learned from the stream
are only listed when a reader can make sense of them: no numbers, no stop words, none
shorter than ``MIN_WORD_LENGTH`` and none rarer than ``RELATED_WORD_MIN_DOCS`` entries
of the stream (a word seen once or twice is more often a name or a typo than a topic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from core.relevance.learning import FeedbackModel

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


#: Decimals of the numbers in an explanation (scores keep 4).
EXPLAIN_DECIMALS = 3
#: What a model that only calibrates says about itself.
CALIBRATION_NOTE = (
    "too few labels of each kind, or words did not help in cross-validation: "
    "feedback calibrates the threshold and leaves the ranking to the query"
)


def row_of(rows: sp.csr_matrix | None, i: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Columns and values of row ``i`` of a CSR matrix (empty without one)."""
    if rows is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    start, end = rows.indptr[i], rows.indptr[i + 1]
    return rows.indices[start:end], rows.data[start:end]


def query_words(
    columns: np.ndarray[Any, Any],
    parts: np.ndarray[Any, Any],
    term_columns: Mapping[str, np.ndarray[Any, Any]],
    readable: np.ndarray[Any, Any],
    names: Sequence[str],
    *,
    count: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The query terms a row holds with their part of its similarity (``parts`` by
    column), and the readable learned words that counted most."""
    found = {int(c): float(p) for c, p in zip(columns, parts, strict=True)}
    terms = [
        (term, sum(found.get(int(c), 0.0) for c in cols))
        for term, cols in term_columns.items()
        if any(int(c) in found for c in cols)
    ]
    terms.sort(key=lambda pair: (-pair[1], pair[0]))
    keep = readable[columns]
    related = strongest(columns[keep], parts[keep], names, count)
    return (
        [{"term": t, "weight": round(w, EXPLAIN_DECIMALS)} for t, w in terms[:count]],
        [word for word, _ in related],
    )


def model_summary(model: FeedbackModel) -> dict[str, Any]:
    """What an explanation says of a search's feedback model."""
    part: dict[str, Any] = {
        "kind": "feedback",
        "version": model.version,
        "labels": model.label_count,
        "stage": model.stage,
    }
    if not model.uses_words:
        part["note"] = CALIBRATION_NOTE
    return part


def feedback_words(
    columns: np.ndarray[Any, Any], parts: np.ndarray[Any, Any], names: Sequence[str]
) -> dict[str, Any]:
    """The readable words whose learned weights raised and lowered a story most."""
    return {
        "label": FEEDBACK_WORDS_LABEL,
        "raised": [w for w, _ in strongest(columns, parts, names, REASON_WORDS)],
        "lowered": [w for w, _ in strongest(columns, -parts, names, REASON_WORDS)],
    }


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

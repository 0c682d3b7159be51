"""Matching documents against a parsed query: the hard filter, and what matched where.

A :class:`Document` is tokenized once, on its first match, and the index is cached on
it, so many searches checking one story share the work.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from core.relevance.query import (
    And,
    Field,
    Leaf,
    Not,
    Or,
    Phrase,
    Query,
    Term,
    source_host,
    tokenize,
)


class _Text:
    """One field's tokens, ready for term, prefix and phrase lookups."""

    def __init__(self, text: str) -> None:
        tokens = tokenize(text)
        self.vocab = frozenset(tokens)
        # Spaces delimit tokens, so a phrase is a substring search done in C.
        self.joined = " " + " ".join(tokens) + " "

    @cached_property
    def sorted_vocab(self) -> list[str]:
        return sorted(self.vocab)

    def has(self, node: Term | Phrase) -> bool:
        if isinstance(node, Phrase):
            return " " + " ".join(node.words) + " " in self.joined
        if not node.prefix:
            return node.text in self.vocab
        at = bisect_left(self.sorted_vocab, node.text)
        return at < len(self.sorted_vocab) and self.sorted_vocab[at].startswith(node.text)


class _Index(NamedTuple):
    title: _Text
    text: _Text
    host: str
    language: str


@dataclass(frozen=True)
class Document:
    """What a query is matched against; tokenized once, on first match, then cached."""

    title: str
    text: str = ""
    source: str = ""  # a domain or a URL
    language: str = ""

    @cached_property
    def _index(self) -> _Index:
        language = self.language.strip().lower().replace("_", "-")
        return _Index(_Text(self.title), _Text(self.text), source_host(self.source), language)


def _where(leaf: Leaf, index: _Index) -> list[str]:
    """The document fields a leaf matches, [] when none."""
    if isinstance(leaf, Term | Phrase):
        return [name for name in ("title", "text") if getattr(index, name).has(leaf)]
    if leaf.name == "title":
        assert not isinstance(leaf.value, str)
        return ["title"] if index.title.has(leaf.value) else []
    assert isinstance(leaf.value, str)
    if leaf.name == "site":
        host, site = index.host, leaf.value
        return ["source"] if host == site or host.endswith("." + site) else []
    lang = index.language
    return ["language"] if lang == leaf.value or lang.startswith(leaf.value + "-") else []


def _eval(node: Query, index: _Index) -> bool:
    if isinstance(node, And):
        return all(_eval(child, index) for child in node.children)
    if isinstance(node, Or):
        return any(_eval(child, index) for child in node.children)
    if isinstance(node, Not):
        return not _eval(node.operand, index)
    if isinstance(node, Term | Phrase):  # the hot path: skip building _where's list
        return index.title.has(node) or index.text.has(node)
    return bool(_where(node, index))


def matches(query: Query, doc: Document) -> bool:
    """Whether ``doc`` passes the query (the hard filter, before any scoring)."""
    return _eval(query, doc._index)


def _positive_leaves(node: Query, positive: bool = True) -> Iterator[Leaf]:
    if isinstance(node, Not):
        yield from _positive_leaves(node.operand, not positive)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _positive_leaves(child, positive)
    elif positive:
        yield node


def positive_terms(query: Query) -> list[str]:
    """Non-negated terms and phrases, in query order, deduplicated (``econom*`` kept as is).

    Phrases come back as space-separated words; ``site:`` and ``lang:`` are not terms.
    """
    terms: dict[str, None] = {}
    for leaf in _positive_leaves(query):
        value = leaf.value if isinstance(leaf, Field) else leaf
        if isinstance(value, Phrase):
            terms[" ".join(value.words)] = None
        elif isinstance(value, Term):
            terms[value.to_text()] = None
    return list(terms)


def matched_terms(query: Query, doc: Document) -> list[str]:
    """Which non-negated parts of the query matched where: ``'"rate cut" in title, text'``."""
    found: dict[str, None] = {}
    for leaf in _positive_leaves(query):
        where = _where(leaf, doc._index)
        if where:
            found[f"{leaf.to_text()} in {', '.join(where)}"] = None
    return list(found)

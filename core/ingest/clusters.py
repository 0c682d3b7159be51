"""Near-duplicate clusters of one search, and which story of a cluster is delivered.

A cluster groups the copies of one article (:mod:`core.ingest.similarity` decides what a
copy is): ``stories.clusterId`` names the cluster's first story (which names itself). It
is bounded in time: a story joins only a cluster whose first story was found less than
:data:`CLUSTER_WINDOW` before it, so a chain of look-alikes never grows one cluster
forever. A new story is compared with every story of the recent clusters, not only with
their first story.

Delivery is decided per story, never per cluster. A story that passed the search's rules
is hidden (``stories.duplicateOfId``, and an ``explanation`` that says "also reported
as ...") only when it is a copy of another story of its cluster that is, or will be,
delivered: that story's lead. The lead is the best story that passed the rules (highest
relevance score): a copy that scores higher than a lead not yet in a digest takes its
place; a story filtered out (excluded source or term, below the threshold, the first
run's backlog) is never a lead, so the next copy that passes the rules is delivered. A
filtered story keeps its own reason. Digests list a lead's copies as "also reported by".

:func:`assign` is pure (no I/O, no clock); :func:`cluster_new_stories` loads, calls it
and writes, in the caller's transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from core.ingest.similarity import Match, Text, compare

#: Similarity at or above which two stories are copies, unless the search's
#: ``relevanceSettings.clusteringThreshold`` says otherwise. Above
#: :data:`core.ingest.similarity.WEAK_FACTOR`, so weak evidence never decides alone.
DEFAULT_CLUSTER_THRESHOLD = 0.55
#: A story joins a cluster whose first story was found at most this long before it.
CLUSTER_WINDOW = timedelta(hours=48)
#: Words a story must share with another to be compared with it at all.
MIN_SHARED_WORDS = 3
#: A word found in more than this share of the recent stories says nothing about a pair
#: ("said", "percent") and is not used to find candidates...
MAX_WORD_SHARE = 0.02
#: ...unless it is in at most this many stories (a small search has no statistics).
MIN_WORD_POSTINGS = 50


@dataclass(frozen=True)
class Doc:
    """What clustering reads of one story.

    Parameters:
      id: the story id (time-ordered).
      text: headline, lead, publication time and source host.
      found_at: when the search found it.
      eligible: it passed the search's rules (not filtered).
      score: its relevance score; the best eligible copy leads.
      cluster_id: its cluster's first story, if it is in one.
      duplicate_of: the lead it is hidden under, if any.
      sent: it is in a digest already (delivered or about to be): it stays the lead.
    """

    id: str
    text: Text
    found_at: datetime
    eligible: bool = True
    score: float = 0.0
    cluster_id: str | None = None
    duplicate_of: str | None = None
    sent: bool = False


@dataclass(frozen=True)
class Change:
    """New cluster and lead of a story; ``match`` is why it is hidden (None: delivered)."""

    cluster_id: str | None
    duplicate_of: str | None
    match: Match | None = None
    lead: Doc | None = None


@dataclass
class _State:
    docs: dict[str, Doc]
    index: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    changes: dict[str, Change] = field(default_factory=dict)

    def set(self, doc: Doc, change: Change) -> None:
        self.docs[doc.id] = replace(
            doc, cluster_id=change.cluster_id, duplicate_of=change.duplicate_of
        )
        self.changes[doc.id] = change

    def add(self, doc: Doc) -> None:
        self.docs[doc.id] = doc
        for word in doc.text.words:
            self.index[word].append(doc.id)


def _shown(doc: Doc) -> bool:
    """Delivered on its own (or will be): eligible and hidden under no other story."""
    return doc.eligible and doc.duplicate_of is None


def _candidates(state: _State, doc: Doc) -> list[Doc]:
    """Stories sharing :data:`MIN_SHARED_WORDS` telling words with ``doc``."""
    limit = max(MIN_WORD_POSTINGS, int(MAX_WORD_SHARE * len(state.docs)))
    shared: Counter[str] = Counter()
    for word in doc.text.words:
        postings = state.index.get(word, ())
        if len(postings) <= limit:
            shared.update(postings)
    needed = min(MIN_SHARED_WORDS, len(doc.text.words))
    return [state.docs[i] for i, n in shared.items() if n >= needed and i != doc.id]


def _open_cluster(state: _State, other: Doc, at: datetime) -> str | None:
    """The id of ``other``'s cluster if a story found at ``at`` may still join it."""
    first = state.docs.get(other.cluster_id or other.id)
    if first is None or at - first.found_at > CLUSTER_WINDOW:
        return None
    return first.id


def assign(
    new: Sequence[Doc], earlier: Sequence[Doc] = (), threshold: float = DEFAULT_CLUSTER_THRESHOLD
) -> dict[str, Change]:
    """Cluster ``new`` stories (in the order given) into ``earlier`` ones and each other.

    Returns story id -> :class:`Change` for every story whose cluster or lead changes:
    the new stories that join a cluster or are hidden, a cluster's first story when its
    second member arrives, and a lead (with its copies) that a better copy replaces.
    """
    state = _State(docs={})
    for doc in earlier:
        state.add(doc)
    for doc in new:
        matches: list[tuple[Match, Doc, str]] = []
        for other in _candidates(state, doc):
            cluster = _open_cluster(state, other, doc.found_at)
            if cluster is None:
                continue
            match = compare(doc.text, other.text, floor=threshold)
            if match.score >= threshold:
                matches.append((match, other, cluster))
        state.add(doc)
        if matches:
            _join(state, doc, matches)
    return state.changes


def _join(state: _State, doc: Doc, matches: list[tuple[Match, Doc, str]]) -> None:
    """Put ``doc`` in the cluster of its best match, hidden under the best delivered copy
    it matches (or taking that copy's place if it scores higher and is not sent yet)."""
    leads = [m for m in matches if _shown(state.docs[m[1].id])]
    match, other, cluster = max(leads or matches, key=lambda m: (m[0].score, m[1].id))
    first = state.docs[cluster]
    if first.cluster_id is None:
        state.set(first, Change(cluster, first.duplicate_of))
    lead = state.docs[other.id]
    if not doc.eligible or not leads:
        state.set(doc, Change(cluster, None))
        return
    if not lead.sent and doc.score > lead.score:
        state.set(doc, Change(cluster, None))
        for copy in [lead, *(d for d in state.docs.values() if d.duplicate_of == lead.id)]:
            state.set(copy, Change(copy.cluster_id or cluster, doc.id, match, doc))
        return
    state.set(doc, Change(cluster, lead.id, match, lead))


def cluster_threshold(relevance_settings: Mapping[str, Any] | None) -> float:
    """The search's ``clusteringThreshold``, or :data:`DEFAULT_CLUSTER_THRESHOLD`."""
    value = (relevance_settings or {}).get("clusteringThreshold")
    return float(value) if isinstance(value, int | float) else DEFAULT_CLUSTER_THRESHOLD


def hidden_reason(lead: Doc, match: Match) -> dict[str, Any]:
    """The ``explanation`` entries of a story hidden under ``lead``."""
    source = f" ({lead.text.source})" if lead.text.source else ""
    return {
        "duplicateOf": {
            "storyId": lead.id,
            "title": lead.text.title,
            "source": lead.text.source,
            "similarity": match.score,
            "rule": match.rule,
        },
        "delivery": f'not sent on its own: also reported as "{lead.text.title}"{source}',
    }


def explain(explanation: dict[str, Any] | None, change: Change) -> dict[str, Any] | None:
    """``explanation`` with the reason of ``change``: why the story is hidden, or nothing
    when it is sent on its own; unchanged when only its cluster changed."""
    if change.duplicate_of is not None and (change.match is None or change.lead is None):
        return explanation
    kept = {k: v for k, v in (explanation or {}).items() if k not in {"duplicateOf", "delivery"}}
    if change.match is None or change.lead is None:
        return kept
    return {**kept, **hidden_reason(change.lead, change.match)}

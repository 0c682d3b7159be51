"""Near-duplicate stories of one search: the same news syndicated under different URLs.

Wire copy reaches a search from several outlets with the headline lightly edited
("OPEC+ agrees to extend oil output cuts into 2025" / "OPEC+ Agrees to Extend Oil Output
Cuts Into 2025"). Each such story keeps its own row (its URL is its own), and
``stories.clusterId`` points at the cluster's first story (that one points at itself), so
a digest shows one story with "also reported by".

Similarity (:func:`similarity`) is the Jaccard index of character 5-gram shingles of the
normalised headline, blended 70/30 with the same index of the first
:data:`LEAD_CHARS` characters of the lead when both stories have one. Character shingles
survive case, punctuation and one-word edits that break word n-grams. Two vetoes keep
precision: headlines whose numbers differ ("iOS 17.1" / "iOS 17.2", "Part 3" / "Part 4")
never match, headlines less alike than :data:`MIN_TITLE_SIMILARITY` never match whatever
their leads, and short headlines ("Today's schedule") weigh only half and need a lead.
Candidate pairs come from an inverted index of headline words, so a run compares each new
story only with recent stories sharing :data:`MIN_SHARED_WORDS` words, not with all.

Measured (bench/clusters.py on the corpus, every entry of its 90 feeds as one search):
see the README's "Performance" section for precision on real feeds.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import News, Story

#: Similarity at or above which two stories are one cluster, unless the search's
#: ``relevanceSettings.clusteringThreshold`` says otherwise.
DEFAULT_CLUSTER_THRESHOLD = 0.6
#: Weight of the headline in the similarity when both stories have a lead.
TITLE_WEIGHT = 0.7
#: Characters of the lead compared (wire copy shares its first sentence, not its tail).
LEAD_CHARS = 300
#: Shingle size, in characters.
SHINGLE_CHARS = 5
#: Headline similarity below which stories never cluster, however alike their leads:
#: a series shares its boilerplate lead ("The RotoAuthority League is ...") across posts.
MIN_TITLE_SIMILARITY = 0.65
#: Headlines of fewer words than this ("Today's schedule", "Transactions", "SI.com") are
#: often a column's fixed name: they weigh as much as the lead, and need one.
MIN_TITLE_WORDS = 5
#: Headline words two stories must share to be compared at all.
MIN_SHARED_WORDS = 2
#: Earlier stories a new one may join: those found within this window...
CLUSTER_WINDOW = timedelta(days=3)
#: ...and at most this many of them (newest first).
MAX_CLUSTER_CANDIDATES = 5000
#: Words too common to make two headlines candidates.
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in",
     "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will",
     "with", "de", "la", "le", "les", "des", "et", "du", "en", "el", "los", "las", "y", "der",
     "die", "das", "und")
)  # fmt: skip
_NON_WORD = re.compile(r"[^\w]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True, slots=True)
class ClusterDoc:
    """What clustering reads of a story; ``cluster_id`` is set for stories already
    in a cluster."""

    id: str
    title: str
    lead: str = ""
    cluster_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    doc: ClusterDoc
    words: frozenset[str]
    title: frozenset[str]
    lead: frozenset[str]
    numbers: frozenset[str]
    short: bool


def _normal(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", folded).strip()


def _shingles(text: str) -> frozenset[str]:
    if len(text) <= SHINGLE_CHARS:
        return frozenset({text}) if text else frozenset()
    return frozenset(text[i : i + SHINGLE_CHARS] for i in range(len(text) - SHINGLE_CHARS + 1))


def _prepare(doc: ClusterDoc) -> _Prepared:
    title = _normal(doc.title)
    words = title.split()
    return _Prepared(
        doc=doc,
        words=frozenset(w for w in words if w not in _STOPWORDS and len(w) > 1),
        title=_shingles(title),
        lead=_shingles(_normal(doc.lead[:LEAD_CHARS])),
        numbers=frozenset(_NUMBER.findall(doc.title)),
        short=len(words) < MIN_TITLE_WORDS,
    )


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def _similarity(a: _Prepared, b: _Prepared) -> float:
    if a.numbers != b.numbers:
        return 0.0
    title = _jaccard(a.title, b.title)
    if title < MIN_TITLE_SIMILARITY:
        return 0.0
    weight = 0.5 if a.short or b.short else TITLE_WEIGHT
    if a.lead and b.lead:
        return weight * title + (1 - weight) * _jaccard(a.lead, b.lead)
    return 0.0 if a.short or b.short else title


def similarity(a: ClusterDoc, b: ClusterDoc) -> float:
    """How alike two stories are, 0 to 1 (see the module docstring)."""
    return _similarity(_prepare(a), _prepare(b))


def assign_clusters(
    new: Sequence[ClusterDoc],
    earlier: Sequence[ClusterDoc] = (),
    threshold: float = DEFAULT_CLUSTER_THRESHOLD,
) -> dict[str, str]:
    """Cluster ``new`` stories (oldest first) into ``earlier`` ones and each other.

    Returns story id -> cluster id (the cluster's first story) for every story whose
    cluster id must be set: new stories that joined a cluster, and the first story of a
    cluster that just got its second member. Pure: no I/O.
    """
    index: dict[str, list[_Prepared]] = defaultdict(list)

    def add(item: _Prepared) -> None:
        for word in item.words:
            index[word].append(item)

    root: dict[str, str] = {d.id: d.cluster_id for d in earlier if d.cluster_id}
    for doc in earlier:
        add(_prepare(doc))
    changes: dict[str, str] = {}
    for doc in new:
        item = _prepare(doc)
        shared: dict[str, int] = defaultdict(int)
        by_id: dict[str, _Prepared] = {}
        for word in item.words:
            for other in index.get(word, ()):
                shared[other.doc.id] += 1
                by_id[other.doc.id] = other
        needed = min(MIN_SHARED_WORDS, len(item.words))
        best_id, best = None, threshold
        for other_id, count in shared.items():
            if count < needed:
                continue
            score = _similarity(item, by_id[other_id])
            if score >= best:
                best_id, best = other_id, score
        if best_id is not None:
            first = root.get(best_id, best_id)
            if best_id not in root:
                root[best_id] = first
                changes[best_id] = first
            root[doc.id] = first
            changes[doc.id] = first
        add(item)
    return changes


def cluster_threshold(relevance_settings: Mapping[str, Any] | None) -> float:
    """The search's ``clusteringThreshold``, or :data:`DEFAULT_CLUSTER_THRESHOLD`."""
    value = (relevance_settings or {}).get("clusteringThreshold")
    return float(value) if isinstance(value, int | float) else DEFAULT_CLUSTER_THRESHOLD


def cluster_new_stories(
    session: Session, news: News, story_ids: Iterable[str], now: datetime
) -> int:
    """Set ``clusterId`` of the search's just-inserted stories (and of the first story of
    each cluster they join), in the caller's transaction; returns stories updated."""
    wanted = set(story_ids)
    if not wanted:
        return 0
    columns = (Story.id, Story.title, Story.snippet, Story.clusterId, Story.foundAt)
    rows = session.execute(
        select(*columns)
        .where(Story.organizationId == news.organizationId, Story.newsId == news.id)
        .where(Story.foundAt >= now - CLUSTER_WINDOW)
        .order_by(Story.foundAt.desc(), Story.id)
        .limit(MAX_CLUSTER_CANDIDATES)
    ).all()
    earlier = [ClusterDoc(r.id, r.title, r.snippet or "", r.clusterId) for r in rows]
    new = [d for d in reversed(earlier) if d.id in wanted]
    earlier = [d for d in reversed(earlier) if d.id not in wanted]
    changes = assign_clusters(new, earlier, cluster_threshold(news.relevanceSettings))
    for story_id, cluster_id in changes.items():
        session.execute(
            update(Story)
            .where(Story.organizationId == news.organizationId, Story.id == story_id)
            .values(clusterId=cluster_id)
        )
    return len(changes)

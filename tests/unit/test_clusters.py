"""Near-duplicate clustering: wire copy groups, look-alike headlines of different news do not."""

from __future__ import annotations

from pathlib import Path

from core.feeds import parse_feed
from core.ingest.clusters import (
    DEFAULT_CLUSTER_THRESHOLD,
    ClusterDoc,
    assign_clusters,
    cluster_threshold,
    similarity,
)

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


def doc(id_: str, title: str, lead: str = "", cluster: str | None = None) -> ClusterDoc:
    return ClusterDoc(id_, title, lead, cluster)


def test_wire_copy_with_edited_headline_joins_the_first_story():
    a = doc("a", "OPEC+ agrees to extend oil output cuts into 2025", "Reuters - OPEC+ agreed")
    b = doc("b", "OPEC + Agrees to Extend Oil Output Cuts Into 2025 (AP)", "AP - OPEC+ agreed")
    c = doc("c", "Sharon Seeks Wider Govt. to Save Gaza Pullout Plan")
    d = doc("d", "Sharon Seeks Wider Government to Save Gaza Pullout Plan")
    assert assign_clusters([b], [a]) == {"a": "a", "b": "a"}
    assert assign_clusters([c, d]) == {"c": "c", "d": "c"}


def test_a_third_copy_joins_the_existing_cluster_root():
    earlier = [
        doc("a", "Delta Pilots Ratify Concession Package", cluster="a"),
        doc("b", "Delta Pilots Ratify Concession Package (Reuters)", cluster="a"),
    ]
    assert assign_clusters([doc("c", "Delta pilots ratify concession package")], earlier) == {
        "c": "a"
    }


def test_different_numbers_series_and_columns_stay_apart():
    pairs = [
        ("Apple releases iOS 17.1 with bug fixes", "Apple releases iOS 17.2 with bug fixes"),
        (
            "RotoAuthority League Update: The Early Leader",
            "RotoAuthority League Update: Early Trades",
        ),
    ]
    for left, right in pairs:
        assert similarity(doc("x", left), doc("y", right)) < DEFAULT_CLUSTER_THRESHOLD
    column_a = doc("a", "Today's schedule", "College soccer: MEN -- Curry at Emerson, 4 p.m.")
    column_b = doc("b", "Today's schedule", "Pro baseball: AL Division Series -- Anaheim")
    assert assign_clusters([column_b], [column_a]) == {}


def test_threshold_comes_from_relevance_settings():
    assert cluster_threshold({}) == DEFAULT_CLUSTER_THRESHOLD
    assert cluster_threshold({"clusteringThreshold": None}) == DEFAULT_CLUSTER_THRESHOLD
    assert cluster_threshold({"clusteringThreshold": 0.9}) == 0.9


def test_precision_on_the_corpus_feeds_every_merge_is_the_same_post():
    """All fixture feeds as one search: each cluster holds one post under several URLs
    (PaulDixExplainsNothing and its Alternate feed publish the same posts)."""
    docs: dict[str, ClusterDoc] = {}
    for path in sorted(FEEDS.iterdir()):
        if path.suffix == ".tsv":
            continue
        try:
            feed = parse_feed(path.read_bytes(), {}, f"http://127.0.0.1/{path.name}")
        except Exception:
            continue
        for entry in feed.entries:
            if entry.canonical_url and entry.canonical_url not in docs:
                docs[entry.canonical_url] = doc(entry.canonical_url, entry.title, entry.summary)
    clusters: dict[str, list[str]] = {}
    for story, root in assign_clusters(list(docs.values())).items():
        clusters.setdefault(root, []).append(story)
    assert len(clusters) >= 5
    for members in clusters.values():
        titles = {docs[m].title.casefold() for m in members}
        assert len(titles) == 1, titles  # same post, not merely alike

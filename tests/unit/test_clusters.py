"""Cluster membership and per-story delivery: copies join a bounded cluster and go out
once under the best story that passed the rules; nothing else is ever hidden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.ingest.clusters import (
    CLUSTER_WINDOW,
    DEFAULT_CLUSTER_THRESHOLD,
    Change,
    Doc,
    assign,
    cluster_threshold,
    explain,
)
from core.ingest.similarity import Match, Text
from tests.support.stories_text import BRIEFINGS, RATES

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def wire(id_: str, source: str, hours: float = 0, **fields) -> Doc:
    """A copy of one wire story about rates, under a headline of its source's own."""
    headlines = {
        "wire.example.org": "Central bank holds rates steady",
        "finance.example.com": "Rates unchanged as policymakers wait for inflation data",
        "courier.example.net": "Central bank keeps rates on hold, wants more inflation data",
    }
    at = T0 + timedelta(hours=hours)
    return Doc(id_, Text(headlines[source], RATES, at, source), at, **fields)


def shown(changes: dict[str, Change], doc_id: str) -> bool:
    return changes[doc_id].duplicate_of is None


def test_a_copy_joins_the_first_story_and_goes_out_under_it():
    changes = assign([wire("b", "finance.example.com", 1)], [wire("a", "wire.example.org")])
    assert changes["a"] == Change("a", None)  # the cluster's first story names itself
    assert changes["b"].cluster_id == "a" and changes["b"].duplicate_of == "a"
    assert changes["b"].match is not None and changes["b"].match.rule == "same lead"


def test_a_story_joining_a_cluster_whose_first_story_was_filtered_is_delivered():
    """An excluded source, an excluded term, the threshold or the first run's backlog
    filtered the first copy: the next copy that passes the rules leads."""
    first = wire("a", "wire.example.org", eligible=False)
    changes = assign([wire("b", "finance.example.com", 1)], [first])
    assert changes["b"] == Change("a", None)
    third = assign(
        [wire("c", "courier.example.net", 2)],
        [first, wire("b", "finance.example.com", 1, cluster_id="a")],
    )
    assert third["c"].duplicate_of == "b"  # the promoted lead now leads


def test_a_filtered_copy_is_grouped_but_keeps_its_own_reason():
    changes = assign(
        [wire("b", "finance.example.com", 1, eligible=False)], [wire("a", "wire.example.org")]
    )
    assert changes["b"] == Change("a", None)


def test_a_better_copy_takes_the_place_of_a_lead_not_yet_sent():
    lead = wire("a", "wire.example.org", score=0.4)
    copy = wire("c", "courier.example.net", 1, score=0.3, cluster_id="a", duplicate_of="a")
    changes = assign([wire("b", "finance.example.com", 2, score=0.9)], [lead, copy])
    assert shown(changes, "b")
    assert changes["a"].duplicate_of == "b" and changes["c"].duplicate_of == "b"
    assert changes["a"].lead is not None and changes["a"].lead.id == "b"


def test_a_lead_already_sent_stays_the_lead():
    lead = wire("a", "wire.example.org", score=0.4, sent=True)
    changes = assign([wire("b", "finance.example.com", 2, score=0.9)], [lead])
    assert changes["b"].duplicate_of == "a"
    assert "a" not in changes or shown(changes, "a")


def test_a_cluster_is_bounded_by_its_first_story_not_by_the_chain():
    first = wire("a", "wire.example.org")
    member = wire("b", "finance.example.com", 40, cluster_id="a", duplicate_of="a")
    late = wire("c", "courier.example.net", CLUSTER_WINDOW.total_seconds() / 3600 + 1)
    changes = assign([late], [first, member])
    assert "c" not in changes  # a new cluster of its own, sent on its own


def test_a_new_story_is_compared_with_every_member_not_only_the_first():
    first = Doc("a", Text("Harbor crane collapses", "", T0, "x.example"), T0, eligible=False)
    member = wire("b", "wire.example.org", 1, cluster_id="a")
    changes = assign([wire("c", "finance.example.com", 2)], [first, member])
    assert changes["c"] == Change("a", "b", changes["c"].match, member)


def test_a_copy_of_a_hidden_copy_that_is_not_a_copy_of_its_lead_is_delivered():
    lead = Doc("a", Text("Central bank holds rates steady", "", T0), T0)
    copy = wire("b", "finance.example.com", 1, cluster_id="a", duplicate_of="a")
    changes = assign([wire("c", "courier.example.net", 2)], [lead, copy])
    assert changes["c"].cluster_id == "a" and shown(changes, "c")


def test_every_issue_of_a_recurring_headline_is_delivered():
    days = [T0 + timedelta(days=n) for n in range(len(BRIEFINGS))]
    title = "Here's what you need to know today"
    issues = [
        Doc(f"d{n}", Text(title, lead, day, "news.example.com"), day)
        for n, (lead, day) in enumerate(zip(BRIEFINGS, days, strict=True))
    ]
    assert assign(issues) == {}
    assert assign(issues[2:], issues[:2]) == {}


def test_copies_in_one_run_go_out_once_under_the_best():
    changes = assign(
        [
            wire("a", "wire.example.org", score=0.5),
            wire("b", "finance.example.com", score=0.8),
            wire("c", "courier.example.net", score=0.6),
        ]
    )
    assert [doc for doc in "abc" if shown(changes, doc)] == ["b"]
    assert {changes[d].duplicate_of for d in "ac"} == {"b"}


def test_the_reason_a_reader_sees_on_a_hidden_story():
    lead = wire("a", "wire.example.org")
    reason = explain({"matched": ["rates"]}, Change("a", "a", Match(0.93, "same lead"), lead))
    assert reason == {
        "matched": ["rates"],
        "duplicateOf": {
            "storyId": "a",
            "title": "Central bank holds rates steady",
            "source": "wire.example.org",
            "similarity": 0.93,
            "rule": "same lead",
        },
        "delivery": 'not sent on its own: also reported as "Central bank holds rates '
        'steady" (wire.example.org)',
    }
    assert explain(reason, Change("b", None)) == {"matched": ["rates"]}  # promoted: no reason
    assert explain(reason, Change("a", "a")) == reason  # only its cluster changed


def test_threshold_comes_from_relevance_settings():
    assert cluster_threshold({}) == DEFAULT_CLUSTER_THRESHOLD
    assert cluster_threshold({"clusteringThreshold": None}) == DEFAULT_CLUSTER_THRESHOLD
    assert cluster_threshold({"clusteringThreshold": 0.9}) == 0.9
    strict = assign([wire("b", "finance.example.com", 1)], [wire("a", "wire.example.org")], 1.01)
    assert strict == {}

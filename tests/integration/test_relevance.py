"""Relevance wired to the database: thresholds, feedback per search, preview, on both DBs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db.base import Base
from core.db.models import News, RelevanceModel, Story
from core.ingest.stories import collect_stories
from core.relevance.feedback import load_model, model_count, retrain
from core.relevance.preview import preview_search
from core.relevance.suggestions import missed_entries, stories_to_label, term_suggestions
from core.tenancy.organizations import create_organization
from tests.support.relevance import (
    MORE_NOISE,
    MORE_SPACE,
    NOISE,
    NOW,
    ORBITER,
    SPACE,
    add_entries,
    label,
    new_search,
    run,
    teach,
)


def why(story: Story) -> dict[str, Any]:
    assert story.explanation is not None
    return story.explanation


def make_search(session: Session, slug: str, query: str = "rocket OR mars", **settings) -> News:
    org = create_organization(session, name=slug, slug=slug)
    return new_search(session, org.id, query, **settings)


def test_stories_below_the_threshold_are_stored_filtered_with_the_reason(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme", threshold=0.95)
        add_entries(s, SPACE + NOISE, at=NOW)
        found = run(s, news)
    assert len(found) == len(SPACE + NOISE)
    filtered = [story for story in found if story.isFiltered]
    assert filtered and all(story.relevanceScore >= 0.95 for story in found if not story.isFiltered)
    for story in filtered:
        assert story.relevanceScore < 0.95 and story.explanation is not None
        assert "below threshold 0.950" in why(story)["filtered"]
        assert why(story)["matched"] and why(story)["terms"]


def test_stories_above_the_threshold_are_kept_for_delivery(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme", threshold=0.0, excludedTerms=["esports"])
        add_entries(s, SPACE + NOISE, at=NOW)
        found = {story.title: story for story in run(s, news)}
    assert not found["NASA rocket heads to Mars"].isFiltered
    excluded = found["Rocket League tournament final"]
    assert excluded.isFiltered and why(excluded)["filtered"] == "excluded term 'esports'"


def test_first_run_backlog_keeps_the_scorers_own_reason(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme", excludedTerms=["esports"])
        add_entries(s, SPACE + NOISE, at=NOW, tag="a")
        add_entries(s, SPACE + NOISE, at=NOW - timedelta(days=1), tag="b")
        collect_stories(s, news.organizationId, news, now=NOW, first_run=True)
        found = list(s.scalars(select(Story).where(Story.newsId == news.id)))
    backlog = [x for x in found if "backlog at first run" in why(x).get("filtered", "")]
    assert backlog and all(story.isFiltered for story in backlog)
    esports = [story for story in backlog if story.title == "Rocket League tournament final"]
    assert esports and all(
        why(story)["filtered"] == "backlog at first run; excluded term 'esports'"
        for story in esports
    )


def test_feedback_of_one_organization_never_changes_anothers_scores(db_engine: Engine):
    later = NOW + timedelta(hours=2)
    fresh = [("Rocket lands on Mars", "A NASA rover reached Mars."), *NOISE[:1]]
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        a, b, c = (make_search(s, slug) for slug in ("org-a", "org-b", "org-c"))
        add_entries(s, SPACE + NOISE + MORE_SPACE + MORE_NOISE, at=NOW)
        stories_a = run(s, a)
        for news in (b, c):
            run(s, news)
        label(s, a, stories_a)
        model = retrain(s, a.organizationId, a.id, now=NOW)
        assert model is not None and model.uses_words
        # Scoped by organization first: org B cannot reach A's labels or model.
        assert retrain(s, b.organizationId, a.id, now=NOW) is None
        assert load_model(s, b.organizationId, a.id) is None
        assert model_count(s, b.organizationId, b.id) == 0
        add_entries(s, fresh, at=later, tag="later-")
        new = {
            news.id: {st.title: st for st in run(s, news, later) if st.foundAt == later}
            for news in (a, b, c)
        }
    assert set(new[a.id]) == set(new[b.id]) == {title for title, _ in fresh}
    for title in new[b.id]:
        assert new[b.id][title].relevanceScore == new[c.id][title].relevanceScore
        assert why(new[b.id][title])["model"] == {"kind": "tfidf"}
        assert why(new[a.id][title])["model"]["kind"] == "feedback"
    on_topic, noise = new[a.id]["Rocket lands on Mars"], new[a.id][NOISE[0][0]]
    assert why(on_topic)["model"]["effect"] > 0 > why(noise)["model"]["effect"]
    assert "your feedback raised it" in why(on_topic)["reason"]


def test_retrain_stores_a_new_version_only_when_labels_change(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme")
        add_entries(s, SPACE + NOISE, at=NOW)
        found = run(s, news)
        label(s, news, found[:4])
        first = retrain(s, news.organizationId, news.id, now=NOW)
        again = retrain(s, news.organizationId, news.id, now=NOW)
        label(s, news, found[4:])
        third = retrain(s, news.organizationId, news.id, now=NOW)
        count = model_count(s, news.organizationId, news.id)
    assert first is not None and again is not None and third is not None
    assert (first.version, again.version, third.version, count) == (1, 1, 2, 2)
    assert third.label_count == len(SPACE + NOISE)


def test_retrain_learns_from_the_searchs_stream_beyond_the_labeled_stories(db_engine: Engine):
    # Entries the query never matches (no story, no label) that share the labeled
    # stories' words: only the stream links "nebula" and "trivia" to the labels.
    stream = [
        (f"Telescope sees a nebula {i}", "NASA astronauts in orbit saw the nebula.")
        for i in range(8)
    ] + [
        (f"Arena trivia night {i}", "Gamers played esports trivia in the arena league.")
        for i in range(8)
    ]
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme")
        add_entries(s, SPACE + NOISE + MORE_SPACE + MORE_NOISE, at=NOW)
        add_entries(s, stream, at=NOW, tag="stream-")
        labeled = run(s, news)
        label(s, news, labeled)
        model = retrain(s, news.organizationId, news.id, now=NOW)
    assert not {"nebula", "trivia"} & {w for st in labeled for w in st.title.lower().split()}
    assert model is not None and model.stream_weight is not None
    weights = dict(zip(model.vocabulary, model.coef, strict=True))
    assert weights["nebula"] > 0 > weights["trivia"]


def test_a_model_of_an_older_layout_is_replaced_not_loaded(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme")
        add_entries(s, SPACE + NOISE, at=NOW)
        label(s, news, run(s, news))
        current = retrain(s, news.organizationId, news.id, now=NOW)
        assert current is not None
        row = s.scalars(select(RelevanceModel).where(RelevanceModel.newsId == news.id)).one()
        row.metrics = {**(row.metrics or {}), "format": 1}  # as stored before the residual model
        s.flush()
        before = load_model(s, news.organizationId, news.id)
        renewed = retrain(s, news.organizationId, news.id, now=NOW)
    assert before is None
    assert renewed is not None and renewed.version == 2


def snapshot(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return {
            table.name: s.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def test_preview_returns_delivered_and_filtered_and_writes_nothing(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme")
        add_entries(s, SPACE + NOISE + [("Quiet day", "Nothing happened.")], at=NOW)
        org_id, news_id = news.organizationId, news.id
        settings_before = dict(news.relevanceSettings)
    before = snapshot(db_engine)
    with Session(db_engine) as s:
        result = preview_search(
            s,
            org_id,
            news_id,
            query_text="rocket OR mars",
            relevance_settings={"threshold": 0.5, "excludedTerms": ["candy"]},
            now=NOW,
        )
        assert not s.new and not s.dirty and not s.deleted
        s.rollback()
    assert snapshot(db_engine) == before
    with Session(db_engine) as s:
        saved = s.get(News, news_id)
        assert saved is not None and saved.relevanceSettings == settings_before
    assert result.not_matching == 1
    assert len(result.delivered) + len(result.filtered) == len(SPACE + NOISE)
    reasons = {item.title: item.filtered for item in result.filtered}
    assert reasons.get("Mars bar prices rise") == "excluded term 'candy'"
    for item in result.delivered:
        assert item.score >= 0.5 and item.explanation["matched"]


def test_wordless_stream_scores_in_runs_and_previews_without_failing(db_engine: Engine):
    wordless = [("—", "…"), ("!!!", ""), ("🚀", "★ ★")]
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme", query="", boostedTerms={"rocket": 2.0})
        add_entries(s, wordless, at=NOW)
        stories = run(s, news)
    assert len(stories) == len(wordless)
    assert all(st.isFiltered and "below default threshold" in why(st)["filtered"] for st in stories)
    with Session(db_engine) as s:
        result = preview_search(
            s, news.organizationId, news.id, query_text="-rocket", relevance_settings=None, now=NOW
        )
    assert len(result.filtered) == len(wordless) and not result.delivered


def test_runs_adapt_the_threshold_to_the_searchs_own_matches(db_engine: Engine):
    matching = [
        (f"Rocket report {i}", f"A rocket flight {i} toward Mars and back.") for i in range(25)
    ]
    quiet = [(f"Quiet news {i}", "Nothing at all happened in town today.") for i in range(5)]
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        news = make_search(s, "acme")  # no threshold: it adapts
        add_entries(s, matching + quiet, at=NOW)
        found = run(s, news)
    assert len(found) == len(matching)
    assert {why(story)["threshold"]["kind"] for story in found} == {"adaptive"}
    held = [story for story in found if story.isFiltered]
    assert 1 <= len(held) <= 4  # the weakest tenth of its own matches
    assert all("below adaptive threshold" in why(story)["reason"] for story in held)


def learned_searches(session: Session) -> tuple[News, News]:
    """Two searches with the same labels: one lists suggestions, one also delivers them."""
    listing = make_search(session, "lists")
    delivering = make_search(session, "delivers", deliverSuggestions=True)
    add_entries(session, SPACE + NOISE + MORE_SPACE + MORE_NOISE, at=NOW)
    for news in (listing, delivering):
        teach(session, news)
    add_entries(session, [ORBITER], at=NOW + timedelta(hours=1), tag="new-")
    return listing, delivering


def test_suggestions_are_delivered_only_when_the_search_opts_in(db_engine: Engine):
    later = NOW + timedelta(hours=2)
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        listing, delivering = learned_searches(s)
        listed = {story.title: story for story in run(s, listing, later)}
        delivered = {story.title: story for story in run(s, delivering, later)}
    assert ORBITER[0] not in listed
    suggested = delivered[ORBITER[0]]
    assert why(suggested)["suggested"] is True and not suggested.isFiltered
    assert why(suggested)["reason"].startswith("no query word, but like the stories you marked")


def test_missed_entries_terms_and_stories_to_label(db_engine: Engine):
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        listing, _ = learned_searches(s)
        org_id, news_id = listing.organizationId, listing.id
        extra = make_search(s, "unlabeled")
        run(s, extra)
    with Session(db_engine) as s:
        missed = missed_entries(s, org_id, news_id, now=NOW, limit=10)
        terms = term_suggestions(s, org_id, news_id, limit=10)
        to_label = stories_to_label(s, org_id, news_id, limit=10)
        fresh = stories_to_label(s, extra.organizationId, extra.id, limit=3)
        nothing = missed_entries(s, extra.organizationId, extra.id, now=NOW, limit=10)
    assert [item.title for item in missed.missed] == [ORBITER[0]]
    assert missed.missed[0].score >= 0.5 and "never delivered" in missed.note
    words = [term.term for term in terms.terms]
    assert "nasa" in words and not {"rocket", "mars"} & set(words)
    assert all(term.weight > 0 for term in terms.terms)
    assert next(t for t in terms.terms if t.term == "nasa").new_matches == 1  # the orbiter
    assert to_label == []  # every story of the labeled search has its label
    distances = [candidate.distance for candidate in fresh]
    assert len(fresh) == 3 and distances == sorted(distances)
    assert nothing.missed == [] and "at least 5 labels" in nothing.note

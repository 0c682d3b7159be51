"""Relevance wired to the database: thresholds, feedback per search, preview, on both DBs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db.base import Base
from core.db.models import Entry, News, NewsSource, RelevanceModel, Story, StoryFeedback
from core.ingest.stories import collect_stories
from core.news.searches import create_search
from core.relevance.feedback import load_model, model_count, retrain
from core.relevance.preview import preview_search
from core.tenancy.organizations import create_organization

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
FEED = "https://feeds.example.com/news.xml"
SPACE = [
    ("NASA rocket heads to Mars", "The rocket carries a rover to Mars for NASA."),
    ("Mars rover finds water", "Scientists say the rover found ice on Mars."),
    ("Rocket engine test passes", "NASA engineers fired the rocket engine."),
]
NOISE = [
    ("Rocket League tournament final", "Gamers played the esports final in the arena."),
    ("Pocket rocket striker scores", "The striker scored twice in the league match."),
    ("Mars bar prices rise", "The candy maker raised prices of chocolate bars."),
]


def why(story: Story) -> dict[str, Any]:
    assert story.explanation is not None
    return story.explanation


def make_search(session: Session, slug: str, query: str = "rocket OR mars", **settings) -> News:
    org = create_organization(session, name=slug, slug=slug)
    return create_search(
        session,
        org.id,
        name="space",
        search_query={"query": query, "sources": [{"url": FEED}]},
        relevance_settings=settings,
    )


def add_entries(session: Session, items, *, at: datetime, tag: str = "") -> None:
    source_id = session.scalar(select(NewsSource.sourceId).limit(1))
    for i, (title, summary) in enumerate(items):
        url = f"https://news.example.com/{tag}{hashlib.sha1(title.encode()).hexdigest()[:8]}"
        session.add(
            Entry(
                sourceId=source_id,
                canonicalUrl=url,
                url=url,
                title=title,
                summary=summary,
                language="en",
                publishedAt=at - timedelta(minutes=i),
                contentHash=hashlib.sha256(url.encode()).hexdigest(),
                createdAt=at,
                updatedAt=at,
            )
        )
    session.flush()


def run(session: Session, news: News, now: datetime = NOW) -> list[Story]:
    collect_stories(session, news.organizationId, news, now=now, first_run=False)
    return list(session.scalars(select(Story).where(Story.newsId == news.id).order_by(Story.title)))


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


def label(session: Session, news: News, stories: list[Story]) -> None:
    for story in stories:
        relevant = any(story.title == title for title, _ in SPACE)
        session.add(
            StoryFeedback(
                organizationId=news.organizationId,
                newsId=news.id,
                storyId=story.id,
                label="relevant" if relevant else "not_relevant",
            )
        )
    session.flush()


def test_feedback_of_one_organization_never_changes_anothers_scores(db_engine: Engine):
    later = NOW + timedelta(hours=2)
    fresh = [("Rocket lands on Mars", "A NASA rover reached Mars."), *NOISE[:1]]
    with Session(db_engine, expire_on_commit=False) as s, s.begin():
        a, b, c = (make_search(s, slug) for slug in ("org-a", "org-b", "org-c"))
        add_entries(s, SPACE + NOISE, at=NOW)
        stories_a = run(s, a)
        for news in (b, c):
            run(s, news)
        label(s, a, stories_a)
        assert retrain(s, a.organizationId, a.id, now=NOW) is not None
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
    assert why(on_topic)["model"]["contribution"] > why(noise)["model"]["contribution"]


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
    assert all(st.isFiltered and "below threshold" in why(st)["filtered"] for st in stories)
    with Session(db_engine) as s:
        result = preview_search(
            s, news.organizationId, news.id, query_text="-rocket", relevance_settings=None, now=NOW
        )
    assert len(result.filtered) == len(wordless) and not result.delivered

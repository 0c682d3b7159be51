"""A small space-news world for relevance tests: entries, a search, labels, a model."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Entry, News, NewsSource, Story, StoryFeedback
from core.ingest.stories import collect_stories
from core.news.searches import create_search
from core.relevance.feedback import retrain

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
#: More labeled stories, so that feedback has 5 of each kind; the query words are in the
#: titles of the noise and only in the text of these space stories, so the query score
#: orders them wrongly and words must make up the rest.
MORE_SPACE = [
    ("Orbiter maps the poles", "NASA's orbiter photographed ice in orbit around Mars."),
    ("Launch delayed by NASA", "NASA engineers postponed the rocket launch to orbit."),
    ("Astronauts train in orbit", "NASA astronauts practise in orbit for a Mars mission."),
]
MORE_NOISE = [
    ("Rocket and Mars bars at the arena", "Gamers ate snacks at the esports league final."),
    ("Mars the band rocket to the top", "The band played the league final party in the arena."),
    ("Pocket rocket wins the league on Mars Day", "The striker won the league title."),
]


ORBITER = ("Orbiter reaches orbit", "NASA's new orbiter reached orbit; NASA astronauts cheered.")


def new_search(
    session: Session, organization_id: str, query: str = "rocket OR mars", **settings: Any
) -> News:
    return create_search(
        session,
        organization_id,
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


def label(session: Session, news: News, stories: list[Story]) -> None:
    for story in stories:
        relevant = any(story.title == title for title, _ in SPACE + MORE_SPACE)
        session.add(
            StoryFeedback(
                organizationId=news.organizationId,
                newsId=news.id,
                storyId=story.id,
                label="relevant" if relevant else "not_relevant",
            )
        )
    session.flush()


def teach(session: Session, news: News) -> None:
    """Run the search over the labeled world and label every story it found (feedback
    then learns words: the query alone orders these labels wrongly)."""
    label(session, news, run(session, news))
    model = retrain(session, news.organizationId, news.id, now=NOW)
    assert model is not None and model.uses_words

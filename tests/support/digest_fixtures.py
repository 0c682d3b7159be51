"""Digests every format must render well: one story, forty, clusters with "also reported
by", urgent stories, non-Latin titles, HTML in a title, and a realistic one (the README's
screenshots)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.delivery.model import AlsoReported, DigestView, StoryView

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
PUBLIC_URL = "https://newsmon.example"


def _digest(name: str, stories: list[StoryView], terms: tuple[str, ...] = ()) -> DigestView:
    return DigestView(
        id=f"dg-{name}",
        organization_id="org_demo",
        news_id="news_demo",
        search_name=name,
        key="d:2026-12-03T10:00",
        created_at=NOW,
        period_start=NOW - timedelta(hours=1),
        period_end=NOW,
        stories=tuple(stories),
        query_terms=terms,
        timezone="Europe/Berlin",
    )


def _story(n: int, **fields: object) -> StoryView:
    base = StoryView(
        id=f"st{n:03d}",
        title=f"Grid operators add {n} GW of battery storage ahead of winter peak",
        url=f"https://news.example/energy/{n}",
        snippet="Battery storage on the grid doubled this year as operators prepared for "
        "the winter peak; analysts expect prices to stay volatile until new lines open.",
        source="Energy Daily",
        published_at=NOW - timedelta(minutes=17 * n + 5),
        score=0.9 - n / 100,
        reason="matched \u201cbattery\u201d, \u201cgrid\u201d in the title",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def showcase() -> DigestView:
    """What a morning digest looks like: an urgent story, a wire story many outlets ran,
    a story in French, and a few more."""
    stories = [
        _story(
            1,
            title="Blackout warning: grid operator calls for emergency battery reserves",
            source="Reuters",
            urgent=True,
            score=0.97,
            reason="matched \u201cgrid\u201d, \u201cbattery\u201d in the title; "
            "your feedback raised it",
            cluster_id="c1",
            also_reported=(
                AlsoReported("Associated Press", "https://apnews.example/1"),
                AlsoReported("Le Monde", "https://lemonde.example/1"),
                AlsoReported("Der Spiegel", "https://spiegel.example/1"),
            ),
        ),
        _story(
            2,
            title="Europe's grid-scale battery boom, explained in five charts",
            source="Financial Times",
            cluster_id="c2",
            also_reported=(AlsoReported("The Economist", "https://economist.example/2"),),
        ),
        _story(
            3,
            title="Énergie : RTE accélère le déploiement de batteries sur le réseau",
            source="Le Figaro",
            snippet="Le gestionnaire du réseau électrique français prévoit 2 GW de stockage "
            "par batterie (battery storage) d'ici l'hiver prochain.",
            reason="matched \u201cbattery\u201d in the text",
        ),
        _story(
            4,
            title="Startup <Voltaic> raises $40M for sodium battery cells & grid pilots",
            source="TechCrunch",
            reason="matched \u201cbattery\u201d in the title; related: sodium, cells",
        ),
        _story(
            5, title="Regulator approves new grid fees for storage operators", source="BBC News"
        ),
    ]
    return _digest("Grid batteries", stories, ("battery", "grid"))


def fixtures() -> dict[str, DigestView]:
    """Every fixture digest by name."""
    many = [_story(n, cluster_id=f"c{n // 3}") for n in range(40)]
    return {
        "one story": _digest("One", [_story(1)], ("battery",)),
        "forty stories": _digest("Forty", many, ("battery", "grid")),
        "clusters": _digest(
            "Clusters",
            [
                _story(
                    1, cluster_id="a", also_reported=(AlsoReported("AP", "https://ap.example/1"),)
                ),
                _story(2, cluster_id="a", title="Second take on the same event"),
                _story(3, cluster_id="b"),
            ],
        ),
        "urgent": _digest("Urgent", [_story(1), _story(2, urgent=True, score=0.99)]),
        "non-Latin": _digest(
            "Новости энергетики",
            [
                _story(1, title="Энергосистема готовится к зиме", source="Интерфакс"),
                _story(2, title="خبر عاجل عن الشبكة الكهربائية", source="الجزيرة"),
                _story(3, title="东京电力加快储能部署", source="新华社"),
            ],
        ),
        "HTML in a title": _digest(
            "Markup",
            [
                _story(
                    1,
                    title='<img src="https://tracker.example/p.gif"> <b>Bold</b> & '
                    "<script>x()</script>",
                    snippet='<a href="https://evil.example">click</a> '
                    "<style>body{display:none}</style>",
                    url="https://news.example/a?x=1&y=<2>",
                )
            ],
        ),
        "showcase": showcase(),
    }


def all_titles(digest: DigestView) -> list[str]:
    """Titles of the fixture's stories, for checks that nothing was lost."""
    return [story.title for story in digest.stories]

"""News-search providers: URLs built from the query, the searchQuery union, JSON adapters."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.config import load_settings
from core.errors import ConfigError
from core.feeds import FeedParseError, parse_feed
from core.news.providers import DEFAULT_BASE_URLS, PROVIDER_TYPES, provider_url
from core.news.search_query import FeedSource, ProviderSource, SearchQuery
from core.news.searches import source_url

PROVIDERS = Path(__file__).resolve().parents[1] / "fixtures" / "providers"


def params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("google_news", {"q": "open source", "hl": "fr-BE", "gl": "BE", "ceid": "BE:fr"}),
        ("bing_news", {"q": "open source", "format": "rss", "setlang": "fr", "cc": "BE"}),
        ("hackernews", {"query": "open source", "tags": "story"}),
        ("reddit", {"q": "open source", "sort": "new"}),
        (
            "gdelt",
            {"query": "open source sourcelang:french sourcecountry:BE", "mode": "artlist"},
        ),
    ],
)
def test_each_provider_builds_its_search_url_from_the_query(kind, expected):
    url = provider_url(kind, "  open   source ", language="fr", country="BE")
    assert url.startswith(DEFAULT_BASE_URLS[kind] + "?")
    assert expected.items() <= params(url).items()


def test_base_urls_are_configurable_per_provider():
    base = {"reddit": "http://127.0.0.1:8080/search.rss"}
    assert provider_url("reddit", "x", base_urls=base).startswith(
        "http://127.0.0.1:8080/search.rss?"
    )
    assert provider_url("gdelt", "x", base_urls=base).startswith(DEFAULT_BASE_URLS["gdelt"])


def test_base_url_setting_is_json_and_validated(monkeypatch):
    monkeypatch.setenv("NEWSMON_PROVIDER_BASE_URLS", '{"hackernews": "http://127.0.0.1:9/api"}')
    assert load_settings().provider_base_urls == {"hackernews": "http://127.0.0.1:9/api"}
    monkeypatch.setenv("NEWSMON_PROVIDER_BASE_URLS", '{"altavista": "http://x/"}')
    with pytest.raises(ConfigError, match="NEWSMON_PROVIDER_BASE_URLS"):
        load_settings()


def test_search_query_accepts_feeds_and_providers_and_defaults_to_feed():
    query = SearchQuery.model_validate(
        {
            "query": "climate",
            "sources": [
                {"url": "https://example.org/feed"},
                {"type": "google_news", "language": "EN", "country": "us"},
                {"type": "reddit", "query": "climate change"},
            ],
        }
    )
    feed, google, reddit = query.sources
    assert isinstance(feed, FeedSource) and isinstance(google, ProviderSource)
    assert (google.language, google.country) == ("en", "US")
    assert params(source_url(reddit, query.query))["q"] == "climate change"
    assert params(source_url(google, query.query))["q"] == "climate"


@pytest.mark.parametrize(
    "source",
    [
        {"type": "reddit"},  # no query text anywhere
        {"type": "bing_news", "language": "english"},
        {"type": "bing_news", "country": "USA"},
        {"type": "altavista"},
        {"type": "gdelt", "url": "http://x/"},
    ],
)
def test_bad_provider_sources_are_refused(source):
    with pytest.raises(ValueError):
        SearchQuery.model_validate({"sources": [source]})


def test_every_provider_type_is_allowed_by_the_model():
    for kind in PROVIDER_TYPES:
        SearchQuery.model_validate({"query": "x", "sources": [{"type": kind}]})


def test_hackernews_algolia_answer_parses_as_a_feed():
    feed = parse_feed((PROVIDERS / "hackernews-algolia-search_by_date.json").read_bytes())
    assert len(feed.entries) == 4
    release, ask = feed.entries[0], feed.entries[1]
    assert release.canonical_url == (
        "https://www.postgresql.org/about/news/postgresql-17-released-2936/"
    )  # utm_source dropped
    assert ask.url == "https://news.ycombinator.com/item?id=41688020"  # Ask HN: no link
    assert "<p>" not in ask.summary and "pg_upgrade" in ask.summary
    assert release.published is not None and release.published.tzinfo is not None


def test_gdelt_artlist_answer_parses_as_a_feed():
    feed = parse_feed((PROVIDERS / "gdelt-doc-artlist.json").read_bytes())
    assert len(feed.entries) == 4
    first = feed.entries[0]
    assert first.title == "OPEC + agrees to extend oil output cuts into 2025"
    assert (
        first.published is not None and first.published.isoformat() == "2024-06-02T15:45:00+00:00"
    )
    assert first.language == "English"


def test_empty_object_is_an_empty_gdelt_answer_but_not_a_feed_elsewhere():
    assert parse_feed(b"{}", source_type="gdelt").entries == ()
    with pytest.raises(FeedParseError):
        parse_feed(b"{}")

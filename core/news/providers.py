"""News-search providers: source types that build a fetch URL from a search's query text.

A provider source is stored like a feed source: one shared ``sources`` row per built URL
(type = the provider), so two organizations asking Google News the same question with the
same language and country share one fetch. The URL is built when the search is saved,
from the provider's base URL (:data:`DEFAULT_BASE_URLS`, overridden per type by the
``NEWSMON_PROVIDER_BASE_URLS`` setting so tests serve recorded responses from 127.0.0.1);
changing the setting applies to searches saved afterwards.

What comes back is parsed by :func:`core.feeds.parse_feed` like any feed: Google News,
Bing News and Reddit answer RSS/Atom; Hacker News (Algolia) and GDELT answer JSON, read
by the adapters in :mod:`core.feeds.search_api`.

The query text is the search's boolean query as written (the providers understand
quotes, ``OR`` and ``-word``; field filters are ours alone), unless the source gives its
own ``query``; the search's query still filters what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlencode, urlsplit

#: Source types that are news-search providers (``sources.type`` allows each).
ProviderType = Literal["google_news", "bing_news", "hackernews", "reddit", "gdelt"]
PROVIDER_TYPES: tuple[str, ...] = ("google_news", "bing_news", "hackernews", "reddit", "gdelt")

#: Where each provider answers, unless the ``NEWSMON_PROVIDER_BASE_URLS`` setting says.
DEFAULT_BASE_URLS: Mapping[str, str] = {
    "google_news": "https://news.google.com/rss/search",
    "bing_news": "https://www.bing.com/news/search",
    "hackernews": "https://hn.algolia.com/api/v1/search_by_date",
    "reddit": "https://www.reddit.com/search.rss",
    "gdelt": "https://api.gdeltproject.org/api/v2/doc/doc",
}
#: Results asked of providers that take a count (Algolia ``hitsPerPage``, GDELT
#: ``maxrecords``, Reddit ``limit``).
RESULTS_PER_FETCH = 50
#: GDELT's ``sourcelang:`` takes language names; ISO 639-1 codes we translate.
GDELT_LANGUAGES: Mapping[str, str] = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french",
    "hi": "hindi", "it": "italian", "ja": "japanese", "ko": "korean", "nl": "dutch",
    "pl": "polish", "pt": "portuguese", "ru": "russian", "sv": "swedish", "tr": "turkish",
    "uk": "ukrainian", "zh": "chinese",
}  # fmt: skip


def check_base_urls(value: Mapping[str, str]) -> dict[str, str]:
    """Validate a base-URL override table (settings): known types, http(s) URLs."""
    for kind, url in value.items():
        if kind not in DEFAULT_BASE_URLS:
            raise ValueError(f"unknown provider {kind!r} (known: {', '.join(PROVIDER_TYPES)})")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{kind}: base URL must be http(s)://host/path without a query")
    return dict(value)


def _google_news(query: str, language: str | None, country: str | None) -> dict[str, str]:
    params = {"q": query}
    if language or country:
        lang, ctry = language or "en", country or "US"
        params |= {"hl": f"{lang}-{ctry}", "gl": ctry, "ceid": f"{ctry}:{lang}"}
    return params


def _bing_news(query: str, language: str | None, country: str | None) -> dict[str, str]:
    params = {"q": query, "format": "rss"}
    if language:
        params["setlang"] = language
    if country:
        params["cc"] = country
    return params


def _hackernews(query: str, language: str | None, country: str | None) -> dict[str, str]:
    return {"query": query, "tags": "story", "hitsPerPage": str(RESULTS_PER_FETCH)}


def _reddit(query: str, language: str | None, country: str | None) -> dict[str, str]:
    return {"q": query, "sort": "new", "limit": str(RESULTS_PER_FETCH)}


def _gdelt(query: str, language: str | None, country: str | None) -> dict[str, str]:
    terms = [f"({query})" if " OR " in query else query]
    if language:
        terms.append(f"sourcelang:{GDELT_LANGUAGES.get(language, language)}")
    if country:
        terms.append(f"sourcecountry:{country}")
    return {
        "query": " ".join(terms),
        "mode": "artlist",
        "format": "json",
        "maxrecords": str(RESULTS_PER_FETCH),
        "sort": "datedesc",
    }


_PARAMS: Mapping[str, Callable[[str, str | None, str | None], dict[str, str]]] = {
    "google_news": _google_news,
    "bing_news": _bing_news,
    "hackernews": _hackernews,
    "reddit": _reddit,
    "gdelt": _gdelt,
}


def provider_url(
    kind: str,
    query: str,
    *,
    language: str | None = None,
    country: str | None = None,
    base_urls: Mapping[str, str] | None = None,
) -> str:
    """The URL that asks provider ``kind`` for news matching ``query``.

    ``language`` is an ISO 639-1 code (``en``), ``country`` ISO 3166-1 alpha-2 (``US``);
    providers without such a filter (Hacker News, Reddit) ignore them.
    """
    if kind not in _PARAMS:
        raise ValueError(f"unknown provider {kind!r}")
    base = (base_urls or {}).get(kind) or DEFAULT_BASE_URLS[kind]
    params = _PARAMS[kind](" ".join(query.split()), language, country)
    return f"{base}?{urlencode(params)}"

"""The validated shape of ``news.searchQuery``: the query text and the sources to watch."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.relevance.query import QuerySyntaxError, parse_query

#: Most sources one search may follow.
MAX_SOURCES_PER_SEARCH = 100
#: Longest feed URL accepted.
MAX_URL_LENGTH = 2048


class FeedSource(BaseModel):
    """An RSS, Atom, RDF or JSON Feed URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["feed"] = "feed"
    url: str = Field(max_length=MAX_URL_LENGTH)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme.lower() not in {"http", "https"}:
            raise ValueError("only http:// and https:// feed URLs are accepted")
        if not parts.hostname:
            raise ValueError("the URL has no host")
        return value


#: Every source kind a search may name (news-search providers join this union).
SourceSpec = FeedSource


class SearchQuery(BaseModel):
    """What a search looks for (boolean query text) and where (its sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(default="", max_length=1000)
    sources: list[SourceSpec] = Field(default_factory=list, max_length=MAX_SOURCES_PER_SEARCH)

    @field_validator("query")
    @classmethod
    def _parseable(cls, value: str) -> str:
        if value.strip():
            try:
                parse_query(value)
            except QuerySyntaxError as exc:
                # A ValueError lets pydantic report it under the "query" field.
                raise ValueError(str(exc)) from None
        return value

"""The validated shape of ``news.searchQuery``: the query text and the sources to watch."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.news.providers import ProviderType
from core.relevance.query import QuerySyntaxError, parse_query

#: Most sources one search may follow.
MAX_SOURCES_PER_SEARCH = 100
#: Longest feed URL accepted.
MAX_URL_LENGTH = 2048


class FeedSource(BaseModel):
    """An RSS, Atom, RDF or JSON Feed URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["feed"] = "feed"
    url: str = Field(
        min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"format": "http-url"}
    )

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


#: Longest provider query override.
MAX_PROVIDER_QUERY_LENGTH = 500


class ProviderSource(BaseModel):
    """A news-search provider asked for the search's query (or ``query`` if given).

    ``language``: ISO 639-1 code (``en``); ``country``: ISO 3166-1 alpha-2 (``US``).
    See :mod:`core.news.providers` for the URL each provider builds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ProviderType
    query: str | None = Field(default=None, max_length=MAX_PROVIDER_QUERY_LENGTH)
    # Either case is accepted (the document says so); the code kept is normalized.
    language: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}$", json_schema_extra={"pattern": "^[A-Za-z]{2,3}$"}
    )
    country: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", json_schema_extra={"pattern": "^[A-Za-z]{2}$"}
    )

    @field_validator("language", mode="before")
    @classmethod
    def _lower_language(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("country", mode="before")
    @classmethod
    def _upper_country(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


#: Every source kind a search may name, told apart by ``type`` (default ``feed``).
SourceSpec = Annotated[FeedSource | ProviderSource, Field(discriminator="type")]


class SearchQuery(BaseModel):
    """What a search looks for (boolean query text) and where (its sources). A provider
    source needs query text: its own ``query`` or the search's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(default="", max_length=1000, json_schema_extra={"format": "news-query"})
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

    @model_validator(mode="before")
    @classmethod
    def _feed_is_the_default_type(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("sources"), list):
            data = {
                **data,
                "sources": [
                    {"type": "feed", **s} if isinstance(s, dict) and "type" not in s else s
                    for s in data["sources"]
                ],
            }
        return data

    @model_validator(mode="after")
    def _providers_have_query_text(self) -> SearchQuery:
        for source in self.sources:
            if isinstance(source, ProviderSource) and not (source.query or self.query).strip():
                raise ValueError(f"a {source.type} source needs query text")
        return self

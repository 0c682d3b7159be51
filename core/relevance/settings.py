"""The validated shape of ``news.relevanceSettings``: threshold, boosts, exclusions, model.

Keys are camelCase like the rest of the stored JSON. An empty document is valid and means
the defaults below. Validation errors name the field (``relevanceSettings.threshold``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import ValidationError
from core.relevance.query import source_host, tokenize

#: ``threshold`` value (or omission) that lets the threshold adapt to the search
#: (:mod:`core.relevance.threshold`).
ADAPTIVE = "auto"
#: Largest weight a boosted term may carry (1.0 counts like a query term).
MAX_BOOST_WEIGHT = 10.0
#: Most boosted terms, excluded terms, excluded sources or languages in one list.
MAX_LIST_LENGTH = 100
#: Longest boosted or excluded term, in characters.
MAX_TERM_LENGTH = 100

#: ``tfidf``: the query score alone; ``tfidf+feedback``: refined by the search's
#: feedback classifier once one is trained (the default).
ModelChoice = Literal["tfidf", "tfidf+feedback"]


def _clean_term(value: str) -> str:
    """Normalized words of a term (several make a phrase): ``Open-Source`` -> ``open source``."""
    words = tokenize(value)
    if not words:
        raise ValueError(f"{value!r} has no word characters")
    return " ".join(words)


#: JSON Schema of a boost weight (checked by ``_boosts``, which names the term).
_WEIGHT_SCHEMA: dict[str, Any] = {"exclusiveMinimum": 0.0, "maximum": MAX_BOOST_WEIGHT}
#: A boosted or excluded term: words (several make a phrase), at most ``MAX_TERM_LENGTH``.
Term = Annotated[
    str, Field(min_length=1, max_length=MAX_TERM_LENGTH, json_schema_extra={"format": "term"})
]


class RelevanceSettings(BaseModel):
    """How a search scores and filters its candidate stories.

    Parameters:
      threshold: stories scoring below it are kept, marked filtered, never delivered;
        omitted, ``null`` or ``"auto"``: adapted to the search (its recent matches, then
        its labels).
      boostedTerms: extra terms (or phrases) with a weight, added to the query's terms.
      excludedTerms: a story containing any of them is filtered (with the term as reason).
      excludedSources: domains whose stories are filtered (subdomains included).
      languages: language codes accepted; stories in another known language are filtered.
      model: ``tfidf`` or ``tfidf+feedback`` (see ``ModelChoice``).
      clusteringThreshold: similarity above which stories are grouped (used by ingest).
      deliverSuggestions: also deliver entries the query did not match that the
        search's feedback rates highly (off: they are only listed as suggestions).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | Literal["auto"] | None = None
    boostedTerms: dict[Term, Annotated[float, Field(json_schema_extra=_WEIGHT_SCHEMA)]] = Field(
        default_factory=dict, max_length=MAX_LIST_LENGTH
    )
    excludedTerms: list[Term] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    excludedSources: list[
        Annotated[str, Field(min_length=1, json_schema_extra={"format": "host-or-url"})]
    ] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    languages: list[
        Annotated[str, Field(min_length=2, json_schema_extra={"format": "language-tag"})]
    ] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    model: ModelChoice = "tfidf+feedback"
    clusteringThreshold: float | None = Field(default=None, ge=0.0, le=1.0)
    deliverSuggestions: bool = False

    @property
    def fixed_threshold(self) -> float | None:
        """The user's threshold, or ``None`` when it adapts to the search."""
        return self.threshold if isinstance(self.threshold, float) else None

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        if value is None or value == ADAPTIVE:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(
                f"must be a number from 0 to 1, or {ADAPTIVE!r} to adapt to the search"
            )
        return float(value)

    @field_validator("boostedTerms")
    @classmethod
    def _boosts(cls, value: dict[str, float]) -> dict[str, float]:
        cleaned: dict[str, float] = {}
        for term, weight in value.items():
            if len(term) > MAX_TERM_LENGTH:
                raise ValueError(f"{term[:20]!r}... is longer than {MAX_TERM_LENGTH} characters")
            if not 0.0 < weight <= MAX_BOOST_WEIGHT:
                raise ValueError(
                    f"weight of {term!r} must be above 0 and at most {MAX_BOOST_WEIGHT}"
                )
            cleaned[_clean_term(term)] = float(weight)
        return cleaned

    @field_validator("excludedTerms")
    @classmethod
    def _excluded(cls, value: list[str]) -> list[str]:
        for term in value:
            if len(term) > MAX_TERM_LENGTH:
                raise ValueError(f"{term[:20]!r}... is longer than {MAX_TERM_LENGTH} characters")
        return list(dict.fromkeys(_clean_term(term) for term in value))

    @field_validator("excludedSources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        hosts = []
        for source in value:
            host = source_host(source)
            if not host or " " in host:
                raise ValueError(f"{source!r} is not a domain or URL")
            hosts.append(host)
        return list(dict.fromkeys(hosts))

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        codes = []
        for code in value:
            clean = code.strip().lower().replace("_", "-")
            primary = clean.split("-")[0]
            if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
                raise ValueError(f"{code!r} is not a language code such as 'en' or 'pt-br'")
            codes.append(clean)
        return list(dict.fromkeys(codes))


def validate_relevance_settings(raw: Mapping[str, Any] | None) -> RelevanceSettings:
    """Validate a ``relevanceSettings`` document; the error names the first bad field."""
    try:
        return RelevanceSettings.model_validate(dict(raw or {}))
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in ("relevanceSettings", *error["loc"]))
        raise ValidationError(error["msg"].removeprefix("Value error, "), field=where) from None

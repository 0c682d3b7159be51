"""The rules that keep a scored story from delivery besides its threshold: excluded terms,
excluded sources, languages (in that order; the first that applies is the reason)."""

from __future__ import annotations

from typing import Protocol

from core.relevance.query import source_host, tokenize
from core.relevance.settings import RelevanceSettings


class Scored(Protocol):
    """What the rules read of a candidate story."""

    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def language(self) -> str: ...


def excluded_by(settings: RelevanceSettings, candidate: Scored) -> str | None:
    """Why ``settings`` exclude ``candidate`` whatever its score, or ``None``."""
    if settings.excludedTerms:
        words = " " + " ".join(tokenize(candidate.text)) + " "
        for term in settings.excludedTerms:
            if f" {term} " in words:
                return f"excluded term {term!r}"
    if settings.excludedSources and candidate.url:
        host = source_host(candidate.url)
        for site in settings.excludedSources:
            if host == site or host.endswith("." + site):
                return f"excluded source {site}"
    language = candidate.language.strip().lower().replace("_", "-")
    if settings.languages and language:
        accepted = any(
            language == code or language.startswith(code + "-") for code in settings.languages
        )
        if not accepted:
            return f"language {language} not in {', '.join(settings.languages)}"
    return None

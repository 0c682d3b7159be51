"""The query scorer: deterministic, explained in words, thresholded; settings validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ValidationError
from core.relevance.learning import train_model
from core.relevance.query import parse_query
from core.relevance.scorer import SCORE_DECIMALS, Candidate, fit_scorer, score_batch
from core.relevance.self_training import fit_vectorizer
from core.relevance.settings import validate_relevance_settings
from core.relevance.threshold import FALLBACK_THRESHOLD

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SPACE = [
    "NASA launches rocket to Mars\nThe space agency's rocket carried a rover toward Mars.",
    "Rocket engine test at NASA\nEngineers fired the new rocket engine for the Mars mission.",
    "Astronauts return from space station\nThe crew landed after six months in orbit.",
]
OTHER = [
    f"Team wins the cup final {i}\nThe coach praised the players after the match." for i in range(4)
] + [
    f"Stocks fall on rate fears {i}\nInvestors sold shares as the bank raised rates."
    for i in range(4)
]
STREAM = SPACE + OTHER


def candidates(*texts: str) -> list[Candidate]:
    pairs = [text.split("\n", 1) for text in texts]
    return [Candidate(title, summary) for title, summary in pairs]


def test_scoring_is_deterministic_for_fixed_input():
    query = parse_query("rocket OR mars")
    settings = validate_relevance_settings({})
    first, _ = score_batch(query, settings, STREAM, candidates(*SPACE), now=NOW)
    second, _ = score_batch(query, settings, STREAM, candidates(*SPACE), now=NOW)
    assert [v.score for v in first] == [v.score for v in second]
    assert [v.explanation for v in first] == [v.explanation for v in second]
    assert all(0.0 <= v.score <= 1.0 for v in first)


def test_explanation_names_terms_weights_components_and_model():
    query = parse_query("rocket OR mars")
    verdicts, _ = score_batch(
        query, validate_relevance_settings({}), STREAM, candidates(SPACE[0]), now=NOW
    )
    explanation = verdicts[0].explanation
    assert explanation["rule"] == "query"
    terms = {t["term"]: t["weight"] for t in explanation["terms"]}
    assert set(terms) == {"rocket", "mars"} and all(w > 0 for w in terms.values())
    assert explanation["titleHits"] == ["rocket", "mars"]
    assert set(explanation["components"]) >= {"similarity", "title", "recency", "query"}
    assert explanation["model"] == {"kind": "tfidf"}
    assert explanation["score"] == verdicts[0].score
    assert explanation["reason"] == "matched \u201crocket\u201d, \u201cmars\u201d in the title"
    assert explanation["threshold"]["kind"] == "default"


def numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, float) else []


def test_explanation_values_are_rounded():
    query = parse_query("rocket OR mars")
    verdicts, _ = score_batch(
        query, validate_relevance_settings({}), STREAM, candidates(*SPACE), now=NOW
    )
    for verdict in verdicts:
        values = numbers(verdict.explanation)
        assert values and all(round(v, SCORE_DECIMALS) == v for v in values)


def test_more_query_words_in_the_title_score_higher():
    query = parse_query("rocket OR mars")
    scorer = fit_scorer(query, validate_relevance_settings({}), STREAM)
    both, one = scorer.score(candidates(SPACE[0], SPACE[2].replace("space", "rocket")), now=NOW)
    assert both.score > one.score


def test_boosted_terms_raise_the_score():
    query = parse_query("rocket OR astronauts")
    plain = fit_scorer(query, validate_relevance_settings({}), STREAM)
    boosted = fit_scorer(query, validate_relevance_settings({"boostedTerms": {"Mars": 3}}), STREAM)
    [a] = plain.score(candidates(SPACE[0]), now=NOW)
    [b] = boosted.score(candidates(SPACE[0]), now=NOW)
    assert b.score > a.score and "mars" in b.explanation["titleHits"]


def test_older_entries_score_lower():
    scorer = fit_scorer(parse_query("rocket"), validate_relevance_settings({}), STREAM)
    title, summary = SPACE[0].split("\n", 1)
    fresh, old = scorer.score(
        [
            Candidate(title, summary, published_at=NOW),
            Candidate(title, summary, published_at=NOW - timedelta(days=3)),
        ],
        now=NOW,
    )
    assert fresh.score > old.score


def test_below_threshold_is_filtered_with_the_reason():
    scorer = fit_scorer(
        parse_query("rocket"), validate_relevance_settings({"threshold": 0.99}), STREAM
    )
    [verdict] = scorer.score(candidates(SPACE[1]), now=NOW - timedelta(days=1))
    assert verdict.filtered is not None and "below threshold 0.990" in verdict.filtered
    assert verdict.explanation["filtered"] == verdict.filtered
    scorer = fit_scorer(
        parse_query("rocket"), validate_relevance_settings({"threshold": 0.0}), STREAM
    )
    assert scorer.score(candidates(SPACE[1]), now=NOW)[0].filtered is None


@pytest.mark.parametrize(
    ("settings", "candidate", "reason"),
    [
        ({"excludedTerms": ["Rover"]}, Candidate("Rocket", "a rover"), "excluded term 'rover'"),
        (
            {"excludedSources": ["https://www.spam.example/feed"]},
            Candidate("Rocket", url="https://news.spam.example/a"),
            "excluded source spam.example",
        ),
        ({"languages": ["en"]}, Candidate("Rocket", language="fr-FR"), "language fr-fr not in en"),
    ],
)
def test_exclusion_rules_filter_with_their_reason(settings, candidate, reason):
    scorer = fit_scorer(parse_query("rocket"), validate_relevance_settings(settings), STREAM)
    assert scorer.score([candidate], now=NOW)[0].filtered == reason


def test_no_query_scores_everything_high():
    scorer = fit_scorer(None, validate_relevance_settings({}), STREAM)
    verdicts = scorer.score(candidates(*OTHER), now=NOW)
    assert all(v.score > FALLBACK_THRESHOLD and v.filtered is None for v in verdicts)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"threshold": 1.5}, "relevanceSettings.threshold", "from 0 to 1, or 'auto'"),
        ({"threshold": "high"}, "relevanceSettings.threshold", "from 0 to 1, or 'auto'"),
        ({"threshold": True}, "relevanceSettings.threshold", "from 0 to 1, or 'auto'"),
        ({"deliverSuggestions": "maybe"}, "relevanceSettings.deliverSuggestions", "boolean"),
        ({"boostedTerms": {"ai": 0}}, "relevanceSettings.boostedTerms", "must be above 0"),
        ({"boostedTerms": {"!!": 1}}, "relevanceSettings.boostedTerms", "no word characters"),
        ({"excludedSources": ["not a host"]}, "relevanceSettings.excludedSources", "not a domain"),
        ({"languages": ["english"]}, "relevanceSettings.languages", "not a language code"),
        ({"model": "gpt"}, "relevanceSettings.model", "'tfidf'"),
        ({"treshold": 0.2}, "relevanceSettings.treshold", "Extra inputs"),
        ({"clusteringThreshold": -1}, "relevanceSettings.clusteringThreshold", "greater than"),
    ],
)
def test_settings_validation_names_the_field(raw, field, words):
    with pytest.raises(ValidationError) as caught:
        validate_relevance_settings(raw)
    assert caught.value.field == field and words in str(caught.value)


def test_settings_normalize_terms_sources_and_languages():
    settings = validate_relevance_settings(
        {
            "boostedTerms": {"Open-Source": 2},
            "excludedTerms": ["Crypto", "crypto"],
            "excludedSources": ["https://www.Example.com/x"],
            "languages": ["EN_us"],
        }
    )
    assert settings.boostedTerms == {"open source": 2.0}
    assert settings.excludedTerms == ["crypto"]
    assert settings.excludedSources == ["example.com"]
    assert settings.languages == ["en-us"]
    assert validate_relevance_settings(None).fixed_threshold is None  # adapts


#: Texts without a single word: what a stream of emoji, dashes or bare numbers-free
#: punctuation titles gives the vectorizer (no token, so no vocabulary).
WORDLESS = ["—\n…", "!!!\n", "\n", "🚀 🚀\n★"]


@pytest.mark.parametrize("stream", [[], WORDLESS], ids=["empty", "wordless"])
@pytest.mark.parametrize("query", ["rocket OR mars", "-rocket", ""], ids=["terms", "not", "none"])
@pytest.mark.parametrize("boosts", [{}, {"rocket": 2.0}], ids=["", "boosted"])
def test_an_empty_or_wordless_stream_scores_nothing_without_failing(stream, query, boosts):
    settings = validate_relevance_settings({"boostedTerms": boosts})
    parsed = parse_query(query) if query else None
    verdicts, speed = score_batch(parsed, settings, stream, [], now=NOW)
    assert verdicts == [] and speed.entries == 0


@pytest.mark.parametrize("query", ["-rocket", ""], ids=["not", "none"])
def test_wordless_candidates_score_without_a_vocabulary(query):
    settings = validate_relevance_settings({"boostedTerms": {"rocket": 2.0}})
    parsed = parse_query(query) if query else None
    verdicts, _ = score_batch(parsed, settings, WORDLESS, candidates(*WORDLESS), now=NOW)
    assert len(verdicts) == len(WORDLESS)
    for verdict in verdicts:
        # No word of the boosted term can be there: no similarity, no title hit.
        assert verdict.explanation["components"]["similarity"] == 0.0
        assert verdict.explanation["terms"] == [] and verdict.explanation["titleHits"] == []
        assert verdict.filtered and "below default threshold" in verdict.filtered


def test_feedback_on_wordless_labels_learns_no_word():
    texts = WORDLESS * 3  # 6 labels of each kind: enough for words, were there any
    labels = [True, False] * 6
    model = train_model(texts, labels, [0.5] * 12, fit_vectorizer(texts))
    assert model is None or len(model.vocabulary) == 0


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ({}, None),
        ({"threshold": "auto"}, None),
        ({"threshold": None}, None),
        ({"threshold": 0}, 0.0),
        ({"threshold": 1}, 1.0),
    ],
)
def test_threshold_is_a_number_or_adapts(raw, fixed):
    assert validate_relevance_settings(raw).fixed_threshold == fixed

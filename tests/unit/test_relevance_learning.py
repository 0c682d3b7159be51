"""Feedback that refines the query score, a threshold that fits the search, words a reader
understands, and suggestions past the hard filter (pure functions, no database)."""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.relevance.learning import (
    FEATURES_PER_LABEL,
    Calibration,
    FeedbackModel,
    logit,
    train_model,
)
from core.relevance.query import parse_query
from core.relevance.scorer import Candidate, fit_scorer
from core.relevance.self_training import fit_vectorizer
from core.relevance.settings import validate_relevance_settings
from core.relevance.threshold import (
    ADAPTIVE_DELIVER_SHARE,
    FALLBACK_THRESHOLD,
    choose_threshold,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPACE_WORDS = ["orbit", "satellite", "astronaut", "telescope", "capsule", "payload"]
OTHER_WORDS = ["league", "coach", "striker", "shares", "investors", "bank"]


def space(i: int) -> str:
    a, b = SPACE_WORDS[i % 6], SPACE_WORDS[(i + 1) % 6]
    extra = " Model 817 flew." if i % 3 == 0 else ""
    rare = " The hsdpa uplink." if i == 0 else ""
    return f"Rocket report {i}\nThe rocket carried a {a} and a {b} into space.{extra}{rare}"


def other(i: int) -> str:
    a, b = OTHER_WORDS[i % 6], OTHER_WORDS[(i + 1) % 6]
    return f"Market and match news {i}\nThe {a} and the {b} had a busy day."


STREAM = [space(i) for i in range(30)] + [other(i) for i in range(30)]
QUERY = parse_query("rocket")


def as_candidate(text: str, **fields: object) -> Candidate:
    title, summary = text.split("\n", 1)
    return Candidate(title, summary, **fields)  # type: ignore[arg-type]


def words_model() -> FeedbackModel:
    """Labels the query cannot order (same query score) but the words can."""
    texts = [f"Rocket {i}\n{w} {w} mission" for i, w in enumerate(SPACE_WORDS)]
    texts += [f"Rocket {i}\n{w} {w} rumour" for i, w in enumerate(OTHER_WORDS)]
    labels = [True] * 6 + [False] * 6
    model = train_model(texts[::-1], labels[::-1], [0.5] * 12, fit_vectorizer([*STREAM, *texts]))
    assert model is not None
    return model


def test_learned_words_are_readable_and_labelled():
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM)
    assert scorer.fit.intercept is not None  # self-trained: co-occurring words count
    [verdict] = scorer.score([as_candidate(space(0))], now=NOW)
    related = verdict.explanation["relatedWords"]
    assert related["label"] == "related words learned from this search's stream"
    assert set(related["words"]) & set(SPACE_WORDS)
    assert not {"817", "hsdpa", "the", "rocket"} & set(
        related["words"]
    )  # number, rare, stop, query
    assert "related words \u201c" in verdict.explanation["reason"]


def test_the_query_score_is_a_fixed_offset_under_feedback():
    model = words_model()
    assert model.uses_words and model.stage == "words"
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM, model)
    text = space(4)
    fresh, old = scorer.score(
        [as_candidate(text, published_at=NOW), as_candidate(text, published_at=NOW - timedelta(2))],
        now=NOW,
    )
    query_gap = logit([fresh.explanation["components"]["query"]]) - logit(
        [old.explanation["components"]["query"]]
    )
    score_gap = logit([fresh.score]) - logit([old.score])
    # Feedback moves both by the same words; it never stretches the query's own ranking.
    assert score_gap == pytest.approx(query_gap, abs=0.01)


def test_feedback_raises_a_story_with_words_labeled_relevant_and_says_so():
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM, words_model())
    up, down = scorer.score([as_candidate(space(2)), as_candidate("Rocket bank\nrumour")], now=NOW)
    assert up.explanation["model"]["effect"] > 0 > down.explanation["model"]["effect"]
    assert "your feedback raised it" in up.explanation["reason"]
    assert "your feedback lowered it" in down.explanation["reason"]
    assert up.explanation["model"]["words"]["raised"]


def test_words_are_not_learned_when_they_do_not_beat_the_query_in_cross_validation():
    texts = [f"Rocket {i}\n{SPACE_WORDS[i % 6]} {OTHER_WORDS[i % 6]}" for i in range(12)]
    labels = [i % 2 == 0 for i in range(12)]
    # The query score already orders these labels perfectly; words are noise.
    scores = [0.8 if label else 0.3 for label in labels]
    model = train_model(texts, labels, scores, fit_vectorizer([*STREAM, *texts]))
    assert model is not None and not model.uses_words and model.stage == "calibration"
    assert model.cv_query_ap == 1.0 and model.calibration is not None
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM, model)
    [verdict] = scorer.score([as_candidate(space(1))], now=NOW)
    assert "calibrates the threshold" in verdict.explanation["model"]["note"]
    assert verdict.explanation["threshold"]["kind"] == "calibrated"


def test_below_five_labels_of_each_kind_there_are_no_words_and_no_calibration():
    texts = [space(i) for i in range(4)] + [other(i) for i in range(4)]
    model = train_model(texts, [True] * 4 + [False] * 4, [0.5] * 8, fit_vectorizer(STREAM))
    assert model is not None and not model.uses_words and model.calibration is None


def test_the_number_of_words_is_bounded_by_the_label_count():
    rng = np.random.default_rng(0)
    vocabulary = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(2000)]
    texts = [
        " ".join(rng.choice(vocabulary, 150)) + (" orbit" * 3 if i >= 5 else "") for i in range(10)
    ]
    labels = [i >= 5 for i in range(10)]  # the query's tied scores put them last
    model = train_model(texts, labels, [0.5] * 10, fit_vectorizer(texts))
    assert model is not None and model.uses_words
    assert model.stream_weight is not None and model.regularization is not None  # both parts
    # At most FEATURES_PER_LABEL words per label from each part, of 1,300 the labels hold.
    assert len(model.vocabulary) <= 2 * FEATURES_PER_LABEL * len(labels) < 1000


def test_the_stream_teaches_words_no_label_holds():
    texts = [f"Rocket {i}\nbank shares rumour" for i in range(6)]
    texts += [f"Rocket {i}\norbit capsule mission" for i in range(6)]
    labels = [False] * 6 + [True] * 6  # the query's tied scores put the relevant last
    stream = [f"Space {i}\norbit capsule nebula quasar" for i in range(30)]
    stream += [f"Money {i}\nbank shares dividend merger" for i in range(30)]
    vectorizer = fit_vectorizer([*stream, *texts])
    learned = train_model(texts, labels, [0.5] * 12, vectorizer, stream=stream)
    assert learned is not None and learned.stream_weight is not None
    weights = dict(zip(learned.vocabulary, learned.coef, strict=True))
    assert weights["nebula"] > 0.5 and weights["dividend"] < -0.5
    alone = train_model(texts, labels, [0.5] * 12, vectorizer)
    assert alone is not None
    without = dict(zip(alone.vocabulary, alone.coef, strict=True))
    assert abs(without.get("nebula", 0.0)) < 0.05  # only the stream links it to the labels


def test_entries_the_query_missed_are_rated_by_the_label_words_alone():
    labeled = [f"Rocket {i}\nbank shares rumour" for i in range(6)]
    labeled += [f"Rocket {i}\norbit capsule mission" for i in range(6)]
    stream = [f"Space {i}\norbit capsule nebula quasar" for i in range(30)]
    stream += [f"Money {i}\nbank shares dividend merger" for i in range(30)]
    vectorizer = fit_vectorizer([*stream, *labeled])
    model = train_model(labeled, [False] * 6 + [True] * 6, [0.5] * 12, vectorizer, stream=stream)
    assert model is not None and model.stream_weight is not None and model.suggests
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), [*stream, *labeled], model)
    nebula = "Nebula quasar\nA nebula and a quasar."
    as_match, as_missed = scorer.score(
        [as_candidate(nebula), as_candidate(nebula, matched=False)], now=NOW
    )
    # The stream words learned "nebula" from what they rated relevant among the stream:
    # they reorder the query's matches, but never make a suggestion on their own.
    assert as_match.explanation["model"]["effect"] > 0
    assert not as_missed.suggested and as_missed.explanation["model"].get("effect", 0) <= 0
    [liked] = scorer.score(
        [as_candidate("Orbit capsule\nAn orbit capsule mission.", matched=False)], now=NOW
    )
    assert liked.suggested and "mission" in liked.explanation["model"]["words"]["raised"]


def test_a_model_of_label_words_alone_rates_entries_the_query_missed_with_them():
    model = FeedbackModel(
        vocabulary=("orbit", "capsule", "satellite"),
        coef=np.asarray([3.0, 3.0, 3.0]),
        calibration=None,
        label_count=12,
        relevant=6,
        regularization=10.0,
    )
    assert model.suggest_coef is None and model.suggests  # no stream words: coef serves both
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM, model)
    [liked] = scorer.score(
        [as_candidate("Orbit news\nA satellite and a capsule reached orbit.", matched=False)],
        now=NOW,
    )
    assert liked.suggested


def test_no_model_until_both_kinds_of_label_exist():
    vectorizer = fit_vectorizer(STREAM)
    assert train_model(STREAM[:3], [True] * 3, [0.5] * 3, vectorizer) is None
    assert train_model(STREAM[:3], [True, True, False], [0.5] * 3, vectorizer) is None


def test_models_are_zlib_json_and_other_layouts_are_refused():
    model = words_model()
    data = model.to_bytes()
    document = json.loads(zlib.decompress(data))  # JSON, never a pickle
    assert document["format"] == 4 and document["vocabulary"]
    again = FeedbackModel.from_bytes(data, version=4)
    assert again.version == 4 and again.vocabulary == model.vocabulary
    assert np.allclose(again.coef, model.coef, atol=1e-6)
    older = zlib.compress(json.dumps({"format": 3, "vocabulary": []}).encode())
    with pytest.raises(ValueError, match="format 3"):
        FeedbackModel.from_bytes(older)


def test_an_entry_the_query_missed_is_suggested_only_when_feedback_rates_it_highly():
    settings = validate_relevance_settings({})
    learned = fit_scorer(QUERY, settings, STREAM, words_model())
    liked, unliked = learned.score(
        [
            as_candidate("Orbit news\nA satellite and a capsule reached orbit.", matched=False),
            as_candidate(other(3), matched=False),
        ],
        now=NOW,
    )
    assert liked.suggested and liked.score >= 0.5
    assert liked.explanation["reason"].startswith(
        "no query word, but like the stories you marked relevant"
    )
    assert not unliked.suggested and unliked.filtered == "did not match the query"
    plain = fit_scorer(QUERY, settings, STREAM)
    [unknown] = plain.score([as_candidate(space(1), matched=False)], now=NOW)
    assert not unknown.suggested  # without learned words there is nothing to suggest from


def test_the_threshold_adapts_to_the_searchs_own_matches():
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM)
    threshold = scorer.threshold
    assert threshold.kind == "adaptive" and "weakest 10%" in threshold.basis
    stream = scorer.fit.stream_query
    assert stream is not None and len(stream) == 30
    assert threshold.value == pytest.approx(np.quantile(stream, 1 - ADAPTIVE_DELIVER_SHARE))
    delivered = sum(
        v.filtered is None for v in scorer.score([as_candidate(t) for t in STREAM[:30]], now=NOW)
    )
    assert delivered >= 26


@pytest.mark.parametrize("raw", [{"threshold": 0.9}, {"threshold": 0}])
def test_a_threshold_the_user_set_wins(raw):
    scorer = fit_scorer(QUERY, validate_relevance_settings(raw), STREAM, words_model())
    assert (scorer.threshold.kind, scorer.threshold.value) == ("fixed", raw["threshold"])


def test_few_matches_use_the_default_threshold():
    scorer = fit_scorer(QUERY, validate_relevance_settings({}), STREAM[25:])
    assert (scorer.threshold.kind, scorer.threshold.value) == ("default", FALLBACK_THRESHOLD)


def test_labels_calibrate_the_threshold_towards_where_relevant_stories_are():
    scores = np.linspace(0.2, 0.8, 100)
    adaptive = choose_threshold(None, scores, None)
    generous = choose_threshold(None, scores, Calibration(1.0, 3.0, 200))  # most are relevant
    strict = choose_threshold(None, scores, Calibration(4.0, -2.0, 200))  # only the top
    assert generous.kind == strict.kind == "calibrated" and "200 labels" in strict.basis
    assert generous.value <= adaptive.value < strict.value
    few = choose_threshold(None, scores, Calibration(4.0, -2.0, 5))
    assert adaptive.value < few.value < strict.value  # a few labels move it a little


def test_logit_is_finite_at_the_ends():
    assert all(math.isfinite(x) for x in logit([0.0, 1.0]))

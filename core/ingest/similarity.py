"""Whether two stories are copies of one article: a pure function of their text and times.

"The same article" is what a reader should not get twice: a wire story syndicated under
other URLs (datelines, credits, case and punctuation edited, truncated elsewhere), the
same headline over the same report, the same lead under a rewritten headline, or one
report rewritten (its headline with words added or dropped, its opening sentence said
again with words replaced). An update whose figures changed is news, not a copy. Two
reports of one event written independently are two articles, and so are the issues of a
recurring headline ("Here's what you need to know today", "Morning briefing", a weekly
column), another day's market wrap, another quarter's results, the same template about
another state.

:func:`compare` scores a pair in [0, 1] and names the rule that decided it. Evidence:

- **Headline**: Jaccard index of character :data:`SHINGLE_CHARS`-gram shingles of the
  headlines, after source tags ("(AP)", "Update 2:", " - Publisher") are dropped and
  numbers written as words are read as digits ("Seven" = "7", "1,000" = "1000"). It
  counts half (:data:`WEAK_FACTOR`) when the headline is not *specific* (fewer than
  :data:`MIN_SPECIFIC_WORDS` words beyond stop words and the vocabulary of recurring
  headlines, :data:`GENERIC_WORDS`), starts with "Live:" or "Re:", the two stories come
  from one source with different leads (that source's next issue), they were published
  more than :data:`HEADLINE_MAX_GAP` apart, or their leads disagree and the headlines are
  less alike than :data:`STRICT_HEADLINE`.
- **Lead**: containment of the shorter lead's shingles in the longer's (first
  :data:`LEAD_CHARS` characters, dateline dropped) from :data:`MIN_SHARED_LEAD`, or a run
  of :data:`MIN_COPIED_WORDS` words in a row the leads share (:data:`COPIED_SCORE`); the
  leads of one source under two headlines are its standing intro. It counts only when both leads
  have :data:`MIN_LEAD_CHARS` and the shared words are what one of the headlines is about
  (a third of its specific words), so a boilerplate lead ("Continue reading", a
  series' standing introduction) joins nothing.
- **Both**: the mean of the two, for copies whose headline and lead were both edited.
- **One report reworded** (leads about the headline, figures agreeing): the opening
  sentence said again in the same order (:data:`MIN_OPENING_ORDER` of its words, stop
  words left out, words matched on their first five letters) over leads that share
  :data:`MIN_REWORDED_LEAD` of their wording; or every specific word of one headline in
  the other ("Greek sprinters quit Games" / "... quit to end Games scandal") over opening
  sentences that agree on :data:`MIN_CONTAINED_ORDER` of their words in order, unless
  the headline recurs, both come from one source, or they were published apart.
  Independent reports of one event share its names and figures, rarely their order.

Vetoes: headlines whose numbers contradict (neither set contains the other: "Q3" / "Q4",
"iOS 17.1" / "17.2", "November 13" / "November 20"), headlines that swap one name for
another ("Kraft" / "Colgate" profit falls) or a movement for its opposite ("Stocks rise" /
"Stocks fall"); leads whose first sentences carry other figures or dates are no evidence
(so an update whose toll changed is delivered again). Constants were chosen on the
development pairs of ``tests/fixtures/clusters/pairs.jsonl`` (:data:`bench.clusters.GRID`
by grouped cross-validation); ``bench/clusters.py`` measures them there and on test pairs
never used to choose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from functools import cached_property

from core.ingest.wording import (
    GENERIC_WORDS,
    POLARITY,
    RECURRING_PREFIX,
    STOPWORDS,
    clean_headline,
    clean_lead,
    dates,
    figures,
    fold,
    is_number,
    opening_sentence,
    shingles,
    stem,
    tokens,
)

#: Shingle size, in characters: survives case, punctuation and one-word edits.
SHINGLE_CHARS = 4
#: Characters of the lead compared (wire copy shares its first sentences, not its tail).
LEAD_CHARS = 300
#: A lead shorter than this ("Photo", "Continue reading") is no evidence either way.
MIN_LEAD_CHARS = 60
#: Characters of the lead whose numbers and dates must agree (its first sentence).
LEAD_NUMBER_CHARS = 160
#: Specific headline words from which a headline identifies a story on its own.
MIN_SPECIFIC_WORDS = 3
#: Share of a headline's specific words the two leads must share to be about it.
MIN_ANCHOR_SHARE = 1 / 3
#: Lead containment from which the leads alone say "same article".
MIN_SHARED_LEAD = 0.7
#: Words in a row shared by two leads from which one copied the other: independent
#: reports share names and stock phrases ("the company said on Thursday"), not clauses.
MIN_COPIED_WORDS = 12
#: Score of two leads about the headline sharing :data:`MIN_COPIED_WORDS` words in a row.
COPIED_SCORE = 0.75
#: Headline similarity under which two headlines are no template filled differently.
MIN_TEMPLATE_HEADLINE = 0.2
#: Weight of evidence that is only suggestive (a generic headline, an unanchored lead).
WEAK_FACTOR = 0.5
#: Identical headlines published further apart than this are two issues, not two copies.
HEADLINE_MAX_GAP = timedelta(hours=20)
#: Lead containment below which two stories of one source are two issues of a headline.
SAME_SOURCE_MIN_LEAD = 0.5
#: Headline similarity that stands against leads that disagree (containment below
#: :data:`SAME_SOURCE_MIN_LEAD`): the same headline over two excerpts of one report.
STRICT_HEADLINE = 0.7
#: Words of the opening sentence compared, at most (stop words left out).
OPENING_WORDS = 30
#: An opening sentence shorter than this (in words, stop words left out) says too little.
MIN_OPENING_WORDS = 6
#: Share of the shorter opening sentence's words the other says in the same order, from
#: which it is the same sentence reworded ("has unveiled ... aimed at first-time users"
#: / "is launching ... targeted at first-time users"); independent reports of one event
#: share its names, rarely their order and their verbs.
MIN_OPENING_ORDER = 0.7
#: Lead containment the reworded opening sentence needs besides (shared wording).
MIN_REWORDED_LEAD = 0.5
#: Score of an opening sentence reworded.
REWORDED_SCORE = 0.6
#: Share of the opening sentence in the same order that a headline with words added or
#: dropped ("Greek sprinters quit Games" / "... quit to end Games scandal") needs.
MIN_CONTAINED_ORDER = 0.4
#: Score of a headline whose every word the other headline holds.
CONTAINED_SCORE = 0.6


@dataclass(frozen=True)
class Text:
    """What similarity reads of a story: headline, lead, when published, source host."""

    title: str
    lead: str = ""
    published: datetime | None = None
    source: str | None = None

    @cached_property
    def headline_tokens(self) -> list[str]:
        return tokens(clean_headline(self.title))

    @cached_property
    def headline(self) -> frozenset[str]:
        return shingles(self.headline_tokens, SHINGLE_CHARS)

    @cached_property
    def lead_text(self) -> str:
        return clean_lead(self.lead)

    @cached_property
    def lead_tokens(self) -> list[str]:
        return tokens(self.lead_text[:LEAD_CHARS])

    @cached_property
    def lead_shingles(self) -> frozenset[str]:
        """Empty when the lead is too short to be evidence."""
        if len(self.lead_text) < MIN_LEAD_CHARS:
            return frozenset()
        return shingles(self.lead_tokens, SHINGLE_CHARS)

    @cached_property
    def lead_trigrams(self) -> frozenset[tuple[str, str, str]]:
        """Runs of three words of the lead: a shared run of N words shares N - 2 of them."""
        words = self.lead_tokens
        return frozenset(zip(words, words[1:], words[2:], strict=False))

    @cached_property
    def lead_words(self) -> frozenset[str]:
        return frozenset(tokens(self.lead_text[: LEAD_CHARS * 2]))

    @cached_property
    def specific(self) -> frozenset[str]:
        """Headline words that name this story: not stop words, not recurring vocabulary."""
        return frozenset(
            t
            for t in self.headline_tokens
            if t not in STOPWORDS and t not in GENERIC_WORDS and (len(t) > 1 or is_number(t))
        )

    @cached_property
    def recurring(self) -> bool:
        """A headline too generic to name a story, or a live page or a reply."""
        return len(self.specific) < MIN_SPECIFIC_WORDS or bool(RECURRING_PREFIX.match(self.title))

    @cached_property
    def headline_numbers(self) -> frozenset[str]:
        return frozenset(t for t in self.headline_tokens if is_number(t))

    @cached_property
    def lead_numbers(self) -> frozenset[str]:
        """Figures of the lead's first sentence."""
        return figures(self.lead_text[:LEAD_NUMBER_CHARS])

    @cached_property
    def lead_dates(self) -> frozenset[str]:
        """Dates of the lead's first sentence ("jul 5")."""
        return dates(self.lead_text[:LEAD_NUMBER_CHARS])

    @cached_property
    def headline_stems(self) -> frozenset[str]:
        """The headline's specific words, each by its first letters ("Cuts" = "cut")."""
        return frozenset(stem(t) for t in self.specific)

    @cached_property
    def opening(self) -> tuple[str, ...]:
        """The words of the lead's first sentence in order (stems, no stop words); empty
        when the lead is too short to be evidence."""
        if not self.lead_shingles:
            return ()
        words = tokens(opening_sentence(self.lead_text))
        kept = (stem(t) for t in words if t not in STOPWORDS and (len(t) > 2 or is_number(t)))
        return tuple(kept)[:OPENING_WORDS]

    @cached_property
    def words(self) -> frozenset[str]:
        """Words a candidate must share: the headline's specific words, the lead's words."""
        lead = (t for t in self.lead_tokens[:40] if t not in STOPWORDS and len(t) > 2)
        return self.specific | frozenset(lead)


@dataclass(frozen=True)
class Match:
    """How alike two stories are (0 to 1) and which evidence or veto decided it."""

    score: float
    rule: str


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def _containment(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _contradict(a: frozenset[str], b: frozenset[str]) -> bool:
    """Both sides state figures and neither set contains the other."""
    return bool(a) and bool(b) and not (a <= b or b <= a)


def _copied_words(a: Text, b: Text) -> int:
    """The longest run of words the two leads share, in order."""
    left, right = a.lead_tokens, b.lead_tokens
    matcher = SequenceMatcher(None, left, right, autojunk=False)
    return matcher.find_longest_match(0, len(left), 0, len(right)).size


def _word_order(a: Text, b: Text) -> float:
    """Share of the shorter opening sentence's words the other says in the same order."""
    left, right = a.opening, b.opening
    shorter = min(len(left), len(right))
    least = min(MIN_OPENING_ORDER, MIN_CONTAINED_ORDER) * shorter
    if shorter < MIN_OPENING_WORDS or len(set(left) & set(right)) < least:
        return 0.0
    blocks = SequenceMatcher(None, left, right, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks) / shorter


def _contained(a: Text, b: Text) -> bool:
    """Every specific word of the shorter headline (at least :data:`MIN_SPECIFIC_WORDS`)
    is in the other one: the same headline with words added or dropped."""
    short, long = sorted((a.headline_stems, b.headline_stems), key=len)
    return len(short) >= MIN_SPECIFIC_WORDS and short <= long


def _same_word(left: str, right: str) -> bool:
    """ "govt" / "government", "launch" / "launches": one word written two ways."""
    if left[:5] == right[:5] and min(len(left), len(right)) >= 5:
        return True
    short, long = sorted((left, right), key=len)
    if not short or short[0] != long[0]:
        return False
    letters = iter(long)
    return all(c in letters for c in short)


def _is_name(story: Text, word: str) -> bool:
    """``word`` is written capitalized in the story's lead, or past the first word of a
    sentence-case headline: a name, not a verb."""
    for match in re.finditer(r"\b" + re.escape(word) + r"\b", fold(story.lead_text)):
        if story.lead_text[match.start()].isupper():
            return True
    words = story.title.split()
    if sum(w[:1].isupper() for w in words) * 2 < len(words):
        return any(w[:1].isupper() and fold(w).startswith(word) for w in words[1:])
    return False


def _swapped(a: Text, b: Text) -> str | None:
    """Why two headlines are one template filled differently, or None."""
    left, right = a.headline_tokens, b.headline_tokens
    blind = not (a.lead_shingles and b.lead_shingles)
    for op, i1, i2, j1, j2 in SequenceMatcher(None, left, right, autojunk=False).get_opcodes():
        if op != "replace":
            continue
        old, new = left[i1:i2], right[j1:j2]
        moves = ({POLARITY.get(w) for w in old} - {None}, {POLARITY.get(w) for w in new} - {None})
        if moves[0] and moves[1] and not moves[0] & moves[1]:
            return "opposite movements"
        if len(old) == 1 and len(new) == 1 and not _same_word(old[0], new[0]):
            if _is_name(a, old[0]) and _is_name(b, new[0]):
                return "one name swapped for another"
            if blind and not is_number(old[0]):
                return "one word swapped, no lead to tell"
    return None


def _anchored(title: Text, shared: frozenset[str], prefixes: frozenset[str]) -> bool:
    """The words two leads share include a third of what ``title`` is about ("steroid"
    finds "steroids": words of five letters or more match on their first five)."""
    if not title.specific:
        return False
    found = sum(1 for w in title.specific if w in shared or (len(w) >= 5 and w[:5] in prefixes))
    return found >= MIN_ANCHOR_SHARE * len(title.specific)


def _reworded(a: Text, b: Text, lead: float, repeated: bool) -> list[tuple[float, str]]:
    """Evidence of one report reworded, for leads about the headline that agree on their
    figures: the opening sentence said again in the same order, or the headline with
    words added or dropped (not when ``repeated``: one source or a recurring headline)."""
    reworded = lead >= MIN_REWORDED_LEAD
    contained = not repeated and _contained(a, b)
    if not (reworded or contained):
        return []
    order = _word_order(a, b)
    found = []
    if reworded and order >= MIN_OPENING_ORDER:
        found.append((REWORDED_SCORE, "same opening sentence reworded"))
    if contained and order >= MIN_CONTAINED_ORDER:
        found.append((CONTAINED_SCORE, "same headline with words added"))
    return found


def compare(a: Text, b: Text, floor: float = 0.0) -> Match:
    """How alike ``a`` and ``b`` are; see the module docstring for the rules. A score
    below ``floor`` is not worked out exactly (cheap evidence rules the pair out first)."""
    title = _jaccard(a.headline, b.headline)
    leads_known = bool(a.lead_shingles) and bool(b.lead_shingles)
    lead = _containment(a.lead_shingles, b.lead_shingles)
    copy_possible = leads_known and len(a.lead_trigrams & b.lead_trigrams) >= MIN_COPIED_WORDS - 2
    bound = max(title, lead, COPIED_SCORE if copy_possible else 0.0)
    if leads_known and (lead >= MIN_REWORDED_LEAD or _contained(a, b)):
        bound = max(bound, REWORDED_SCORE, CONTAINED_SCORE)
    if bound < floor:
        return Match(round(max(title, lead), 4), "below the threshold")
    if _contradict(a.headline_numbers, b.headline_numbers):
        return Match(0.0, "headline numbers differ")
    if title >= MIN_TEMPLATE_HEADLINE and (swap := _swapped(a, b)):
        return Match(0.0, f"headline: {swap}")
    one_source = bool(a.source) and a.source == b.source
    leads_differ = leads_known and lead < SAME_SOURCE_MIN_LEAD
    published_apart = bool(
        a.published and b.published and abs(a.published - b.published) > HEADLINE_MAX_GAP
    )
    repeated = a.recurring or b.recurring or one_source or published_apart
    weak = (
        a.recurring
        or b.recurring
        or (one_source and leads_differ)
        or published_apart
        or (leads_differ and title < STRICT_HEADLINE)
    )
    scores = [(title * (WEAK_FACTOR if weak else 1.0), "same headline")]
    figures_differ = _contradict(a.lead_numbers, b.lead_numbers) or (
        a.lead_dates and b.lead_dates and not a.lead_dates & b.lead_dates
    )
    if leads_known and not figures_differ:
        shared = a.lead_words & b.lead_words
        prefixes = frozenset(w[:5] for w in shared if len(w) >= 5)
        anchored = _anchored(a, shared, prefixes) or _anchored(b, shared, prefixes)
        if one_source and title < STRICT_HEADLINE:
            anchored = False  # one source, another headline, same lead: its standing intro
        if anchored and lead >= MIN_SHARED_LEAD:
            scores.append((lead, "same lead"))
        elif anchored and copy_possible and _copied_words(a, b) >= MIN_COPIED_WORDS:
            scores.append((COPIED_SCORE, "same lead"))
        else:
            scores.append((lead * WEAK_FACTOR, "same lead"))
        if anchored and not (one_source and leads_differ):
            scores.append(((title + lead) / 2, "same headline and lead"))
        if anchored:
            scores.extend(_reworded(a, b, lead, repeated))
    score, rule = max(scores)
    return Match(round(score, 4), rule)

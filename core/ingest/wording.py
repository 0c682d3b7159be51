"""How a story's headline and lead read as words, for telling copies of one article
apart from look-alikes (:mod:`core.ingest.similarity`): case and accents folded, numbers
written as words read as digits ("Seven" = "7", "1,000" = "1000", "Q3" = "third" = "3"),
source tags dropped from headlines ("(AP)", "Update 2:", " - Publisher") and datelines
from leads ("NEW YORK (Reuters) - "), figures and dates found, and the vocabulary of
recurring headlines named. Pure functions of text."""

from __future__ import annotations

import re
import unicodedata

_STOPWORD_TEXT = (
    "a an and are as at be by for from has have in is it its of on or that the this to "
    "was were will with after over into than but not no up out about s de la le les des "
    "et du en el los las y der die das und"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: Words of recurring headlines (columns, briefings, schedules, live pages): a headline
#: made of these names a slot, not a story.
_GENERIC_TEXT = (
    "news service services today tonight daily weekly week weekend month monthly morning "
    "evening night briefing brief briefs update updates latest live roundup round digest "
    "newsletter edition review reviews report recap preview previews schedule results "
    "notes notables transactions capsules highlights headlines stories story top photo "
    "photos picture pictures video videos gallery podcast episode show column opinion "
    "editorial letters letter world region regional around local national here heres what "
    "whats know need things day days time new more our your you we my game games market "
    "markets wrap open thread discussion links link via com org net www part watch listen "
    "read why how who when where should can do does did get gets go goes one all some now "
    "official officially says said"
)
GENERIC_WORDS = frozenset(_GENERIC_TEXT.split())
#: "Live: ..." pages and "Re: ..." replies reuse one headline for new content.
RECURRING_PREFIX = re.compile(r"^\s*(?:live|re|fwd?|aw|sv|watch|listen)\s*:", re.IGNORECASE)
_TAG_PREFIX = re.compile(r"^\s*updated?\s*\d*\s*[:\-]\s*", re.IGNORECASE)
_TAG_SUFFIX = re.compile(r"\s*\((?:update\s*\d*|[A-Za-z][A-Za-z .&'-]{0,24})\)\s*$", re.IGNORECASE)
_ATTRIBUTION = re.compile(
    r"\s*-\s*(?:sources?|reports?|radio|tv|papers?|(?:[a-z]+ )?media|officials?|diplomats?|"
    r"scientists?|witnesses|police|agency|analysts?)\s*$",
    re.IGNORECASE,
)
#: " - Publisher" / " | Publisher": a spaced dash or bar, then up to four words, no digit.
_PUBLISHER = re.compile(r"\s+[-|\u2013\u2014]\s+(?:[^\s\d-]+\s?){1,4}$")
#: A lead's dateline ends at its first dash or colon: "NEW YORK (Reuters) - ", "AP - ",
#: "(Sports Network) - ", "LOS ANGELES Sept. 13, 2004 - ", "BAGHDAD, Iraq -- ".
_DATELINE = re.compile(r"^(.{0,60}?)\s*(?:--|-|\u2013|\u2014|:)\s+")
_PARENTHESES = re.compile(r"\([^()]*\)")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
#: A sentence ends at ".", "!" or "?" after a lower-case letter, a digit or a quote.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\"'])[.!?](?=\s|$)")
_MIN_SENTENCE = 40
_MAX_SENTENCE = 300
#: Words whose full stop ends no sentence ("Corp.", "Sept.", "Gov.").
_ABBREVIATION_TEXT = (
    "inc corp co ltd plc jr sr mr mrs ms dr st gov sen rep gen col lt no vs jan feb mar apr "
    "aug sept sep oct nov dec"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$|^q([1-4])$")
_MONTH = (
    r"(?P<{0}>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(?:uary|ruary|ch|il|e|y|ust|"
    r"t|tember|ober|ember)?"
)
#: A date ("July 5th", "5 July", "Sept. 13"); "12/16/04" is matched to be dropped.
_DATE = re.compile(
    rf"\b(?:{_MONTH.format('m1')}\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b|"
    rf"(?P<d2>\d{{1,2}})\s+{_MONTH.format('m2')}\b|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})",
    re.IGNORECASE,
)
_CARDINALS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth"
_TENS = "thirty forty fifty sixty seventy eighty ninety"
#: Numbers written as words, read as digits; magnitudes written short, read long.
_NUMBER_WORDS = {
    **{word: str(n) for n, word in enumerate(_CARDINALS.split())},
    **{word: str(n) for n, word in enumerate(_ORDINALS.split(), start=1)},
    **{word: str(10 * n) for n, word in enumerate(_TENS.split(), start=3)},
    "hundred": "100",
    "thousand": "1000",
    "bn": "billion",
    "bln": "billion",
    "mn": "million",
    "mln": "million",
    "pct": "percent",
}
_UP = (
    "rise rises rising rose higher gain gains gained climb climbs climbed jump jumps jumped "
    "rally rallies rallied surge surges surged soar soars soared advance advances advanced "
    "rebound rebounds beats beat win wins won"
)
_DOWN = (
    "fall falls falling fell down lower drop drops dropped slide slides slid slip slips "
    "slipped sink sinks sank decline declines declined tumble tumbles tumbled plunge plunges "
    "plunged loss losses lose loses lost misses miss retreat retreats retreated"
)
#: Movements: a headline that swaps one for an opposite one reports another session.
POLARITY = {
    **dict.fromkeys(_UP.split(), "up"),
    **dict.fromkeys(_DOWN.split(), "down"),
    **dict.fromkeys(("flat", "unchanged", "steady", "mixed"), "flat"),
}


def fold(text: str) -> str:
    """Lower case without accents."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """Folded words and numbers, number words as digits ("Seven" -> "7", "Q3" -> "3")."""
    out = []
    for raw in _TOKEN.findall(_THOUSANDS.sub("", fold(text))):
        word = _NUMBER_WORDS.get(raw, raw)
        if match := _ORDINAL.match(word):
            word = match.group(1) or match.group(2)
        out.append(word)
    return out


def is_number(token: str) -> bool:
    """A token of :func:`tokens` that is a number."""
    return token[0].isdigit()


def shingles(words: list[str], size: int) -> frozenset[str]:
    """Character ``size``-grams of the words joined by spaces."""
    text = " ".join(words)
    if len(text) <= size:
        return frozenset({text}) if text else frozenset()
    return frozenset(text[i : i + size] for i in range(len(text) - size + 1))


def clean_headline(title: str) -> str:
    """The headline without source tags ("(AP)", "Update 2:", "-Radio", " - Publisher")."""
    text = title.strip()
    for _ in range(2):  # "Update 1: Headline (Reuters)"
        text = _ATTRIBUTION.sub("", _TAG_SUFFIX.sub("", _TAG_PREFIX.sub("", text)))
    stripped = _PUBLISHER.sub("", text)
    return stripped if len(stripped) * 2 >= len(text) else text


def clean_lead(lead: str) -> str:
    """The lead without its dateline ("NEW YORK (Reuters) - "): text before the first dash
    or colon whose every word, outside parentheses, is capitalized or a number."""
    text = " ".join(lead.split())
    match = _DATELINE.match(text)
    if match is None:
        return text
    words = _PARENTHESES.sub(" ", match.group(1)).replace(",", " ").split()
    if all(w[:1].isupper() or w[:1].isdigit() or not w[:1].isalnum() for w in words):
        return text[match.end() :]
    return text


def stem(word: str) -> str:
    """A word's first five letters: "launches" = "launch", "cuts" != "cut" is rare enough
    in a headline or an opening sentence to be left alone."""
    return word[:5]


def opening_sentence(text: str) -> str:
    """The first sentence of a lead: up to its first full stop past :data:`_MIN_SENTENCE`
    characters ("U.S.", "Corp." and "Sept." do not end it), at most :data:`_MAX_SENTENCE`."""
    for end in _SENTENCE_END.finditer(text, _MIN_SENTENCE):
        before = text[: end.start()].rsplit(None, 1)[-1].casefold()
        if before not in _ABBREVIATIONS:
            return text[: min(end.end(), _MAX_SENTENCE)]
    return text[:_MAX_SENTENCE]


def figures(text: str) -> frozenset[str]:
    """Figures written in digits in ``text``, dates and years apart (a dateline carries
    them; "one of the" is no figure)."""
    plain = _THOUSANDS.sub("", _DATE.sub(" ", text))
    return frozenset(n for n in _DIGITS.findall(plain) if not _YEAR.match(n))


def dates(text: str) -> frozenset[str]:
    """Dates in ``text`` as "month day" ("jul 5"); numeric dates ("12/16/04") left out."""
    found = set()
    for match in _DATE.finditer(text):
        month, day = match["m1"] or match["m2"], match["d1"] or match["d2"]
        if month and day:
            found.add(f"{month.casefold()[:3]} {int(day)}")
    return frozenset(found)

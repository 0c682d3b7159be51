"""The search-query language: what parses to what, what matches what, what is refused."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.relevance.matching import Document, matched_terms, matches, positive_terms
from core.relevance.query import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    And,
    Field,
    Not,
    Or,
    Phrase,
    QuerySyntaxError,
    Term,
    parse_query,
)

a, b, c, d = Term("a"), Term("b"), Term("c"), Term("d")


@pytest.mark.parametrize(
    ("text", "ast"),
    [
        # precedence: NOT > AND > OR
        ("a OR b AND c", Or((a, And((b, c))))),
        ("a AND b OR c", Or((And((a, b)), c))),
        ("NOT a AND b", And((Not(a), b))),
        ("NOT a OR b", Or((Not(a), b))),
        # implicit AND, flattened
        ("a b c", And((a, b, c))),
        ("a b OR c d", Or((And((a, b)), And((c, d))))),
        ("a AND (b AND c)", And((a, b, c))),
        # NOT and -term
        ("a -b", And((a, Not(b)))),
        ('a -"b c"', And((a, Not(Phrase(("b", "c")))))),
        ("-(a OR b)", Not(Or((a, b)))),
        ("NOT NOT a", Not(Not(a))),
        ("a - b", None),  # a lone "-" is not NOT: refused below as no letters
        # nested parentheses
        ("(a OR (b AND (c OR d)))", Or((a, And((b, Or((c, d))))))),
        ("((a))", a),
        # phrases and words that split into several tokens
        ('"climate change"', Phrase(("climate", "change"))),
        ("covid-19", Phrase(("covid", "19"))),
        ("econom*", Term("econom", prefix=True)),
        # keywords are uppercase only
        ("a and b", And((a, Term("and"), b))),
        ("ANDROID", Term("android")),
        # field filters
        ("title:fed", Field("title", Term("fed"))),
        ('title:"rate cut"', Field("title", Phrase(("rate", "cut")))),
        ("TITLE:fed", Field("title", Term("fed"))),
        ("source:reuters.com", Field("site", "reuters.com")),
        ("site:www.Reuters.com", Field("site", "reuters.com")),
        ("site:https://reuters.com/world", Field("site", "reuters.com")),
        ("lang:EN_us", Field("lang", "en-us")),
        ("-site:foxnews.com", Not(Field("site", "foxnews.com"))),
        # normalization happens at parse time
        ("Zürich ÉCONOMIE", And((Term("zurich"), Term("economie")))),
    ],
)
def test_query_parses_to(text, ast):
    if ast is None:
        with pytest.raises(QuerySyntaxError):
            parse_query(text)
    else:
        assert parse_query(text) == ast


DOC = Document(
    title="Fed signals rate cut as Zürich markets rally",
    text="The central bank said inflation cooled. ÉCONOMIE: economists expect growth.",
    source="https://www.reuters.com/markets/article-1",
    language="en-US",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fed", True),
        ("fed AND missing", False),
        ("fed missing", False),
        ("missing OR fed", True),
        ("missing OR fed AND inflation", True),
        ("(missing OR fed) AND nothing", False),
        ("fed -inflation", False),
        ("fed NOT missing", True),
        ("NOT (missing OR nothing)", True),
        # phrases match consecutive tokens, within one field
        ('"rate cut"', True),
        ('"cut rate"', False),
        ('"rally central"', False),  # title end + text start is not a phrase
        ("rate-cut", True),
        # case and accent insensitivity, both ways
        ("zurich", True),
        ("ZÜRICH", True),
        ("economie", True),
        ("ÉCONOMIE", True),
        # word boundaries: "ai" is not in "said", "cut" is not in "cuts"
        ("ai", False),
        ("said", True),
        ("econom", False),
        # prefix wildcard
        ("econom*", True),
        ("infla*", True),
        ("zzz*", False),
        # title field only looks at the title
        ("title:fed", True),
        ("title:inflation", False),
        ('title:"rate cut"', True),
        ("title:ral*", True),
        # site: domain suffix on label boundaries
        ("site:reuters.com", True),
        ("source:www.reuters.com", True),
        ("site:com", True),
        ("site:notreuters.com", False),
        ("site:euters.com", False),
        ("site:reuters.co", False),
        # lang: primary subtag or exact tag
        ("lang:en", True),
        ("lang:en-us", True),
        ("lang:en-gb", False),
        ("lang:de", False),
        ("fed lang:en -site:foxnews.com", True),
    ],
)
def test_query_matches_document(text, expected):
    assert matches(parse_query(text), DOC) is expected


@pytest.mark.parametrize(
    ("source", "site", "expected"),
    [
        ("reuters.com", "reuters.com", True),
        ("www.reuters.com", "reuters.com", True),
        ("https://uk.reuters.com:443/x?y=1", "reuters.com", True),
        ("notreuters.com", "reuters.com", False),
        ("reuters.com.evil.example", "reuters.com", False),
        ("REUTERS.COM.", "reuters.com", True),
        ("https://xn--bcher-kva.de/", "bücher.de", True),
        ("", "reuters.com", False),
    ],
)
def test_site_matches_domain_and_its_subdomains_only(source, site, expected):
    doc = Document(title="x", source=source)
    assert matches(parse_query(f"site:{site}"), doc) is expected


@pytest.mark.parametrize(
    ("doc_text", "query", "expected"),
    [
        ("Die Straße nach München", "strasse munchen", True),
        ("Les élèves à l'école", '"a l ecole"', True),
        ("Москва объявила", "москва", True),
        ("Москва объявила", "Москва".upper() + " объяв*", True),
        ("東京で地震", "東京で地震", True),  # a CJK run is one token: matches whole
        ("東京で地震", "東京", False),  # ... and not in parts (known limitation)
        ("ﬁnance news", "finance", True),  # compatibility ligature
        ("naïve café", "NAIVE CAFE", True),
    ],
)
def test_unicode_text_matches_accent_and_case_insensitively(doc_text, query, expected):
    assert matches(parse_query(query), Document(title="", text=doc_text)) is expected


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ("(fed OR ecb", "unbalanced parenthesis at 0", 0),
        ("fed OR ecb) AND x", "unbalanced parenthesis at 10", 10),
        ('fed "rate cut', "unterminated quote at 4", 4),
        ('title:"rate cut', "unterminated quote at 6", 6),
        ("fed AND NOT", "expected a term after NOT at 11", 11),
        ("fed -AND x", "expected a term after - at 5", 5),
        ("fed AND", "expected a term after AND at 7", 7),
        ("fed OR OR ecb", "expected a term after OR at 7", 7),
        ("(fed AND) x", "expected a term after AND at 8", 8),
        ("AND fed", "expected a term before AND at 0", 0),
        ("fed (OR ecb)", "expected a term before OR at 5", 5),
        ("fed ()", "empty parentheses at 4", 4),
        ("foo:bar", "unknown field 'foo' at 0", 0),
        ("fed https://x.com", "unknown field 'https' at 4", 4),
        ("title: fed", "expected a value after title: at 6", 6),
        ("fed &&", "no letters or digits in '&&' at 4", 4),
        ('fed ""', "empty phrase at 4", 4),
        ("covid-19*", "a wildcard applies to a single word at 0", 0),
        ("site:not_a_domain", "invalid domain 'not_a_domain' at 5", 5),
        ("lang:english", "invalid language code 'english' at 5", 5),
    ],
)
def test_syntax_error_names_problem_and_position(text, message, position):
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert str(caught.value) == message
    assert caught.value.position == position
    assert isinstance(caught.value, ValidationError)


def test_query_longer_than_limit_is_refused():
    parse_query("a" * MAX_QUERY_LENGTH)
    with pytest.raises(QuerySyntaxError, match=f"longer than {MAX_QUERY_LENGTH}"):
        parse_query("a" * (MAX_QUERY_LENGTH + 1))


def test_nesting_deeper_than_limit_is_refused_not_a_recursion_error():
    parse_query("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    with pytest.raises(QuerySyntaxError, match=f"nested deeper than {MAX_DEPTH} levels at"):
        parse_query("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(QuerySyntaxError, match="nested deeper"):
        parse_query("-" * (MAX_QUERY_LENGTH - 1) + "a")


def test_more_terms_than_limit_are_refused():
    parse_query(" ".join(["a"] * MAX_TERMS))
    with pytest.raises(QuerySyntaxError, match=f"more than {MAX_TERMS} terms at"):
        parse_query(" ".join(["a"] * (MAX_TERMS + 1)))


@pytest.mark.parametrize(
    "text",
    [
        "a OR b AND c",
        "a b -c",
        '(fed OR ecb) AND "rate cut" -title:rumour*',
        "NOT NOT (a OR NOT b) lang:de site:bbc.co.uk",
        "Zürich covid-19 econom*",
        "((a OR b) (c OR d)) OR NOT (a b)",
        'source:"www.reuters.com" title:Москва',
    ],
)
def test_canonical_text_round_trips_to_the_same_ast(text):
    query = parse_query(text)
    assert str(query) == query.to_text()
    assert parse_query(str(query)) == query
    assert str(parse_query(str(query))) == str(query)  # canonical is a fixed point


def test_canonical_text_is_explicit():
    assert str(parse_query("a OR b c -d")) == "a OR (b AND c AND NOT d)"
    assert str(parse_query("source:WWW.Reuters.com title:Rate*")) == (
        "site:reuters.com AND title:rate*"
    )


def test_positive_terms_skip_negated_and_filter_fields():
    query = parse_query(
        'fed "rate cut" -inflation title:ecb econom* site:reuters.com lang:en NOT (a OR NOT b) fed'
    )
    assert positive_terms(query) == ["fed", "rate cut", "ecb", "econom*", "b"]


def test_matched_terms_say_which_parts_matched_where():
    query = parse_query('(fed OR ecb) "rate cut" title:rally econom* site:reuters.com -foo')
    assert matched_terms(query, DOC) == [
        "fed in title",
        '"rate cut" in title',
        "title:rally in title",
        "econom* in text",
        "site:reuters.com in source",
    ]


def test_document_is_tokenized_once_and_stays_immutable():
    doc = Document(title="Fed", text="cut")
    assert matches(parse_query("fed"), doc)
    index = doc._index
    assert matches(parse_query("cut"), doc)
    assert doc._index is index
    with pytest.raises(AttributeError):
        doc.title = "other"  # type: ignore[misc]
    assert doc == Document(title="Fed", text="cut")

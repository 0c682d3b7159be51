"""Copies of one article match; recurring headlines, templates and other days do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.ingest.clusters import DEFAULT_CLUSTER_THRESHOLD as THRESHOLD
from core.ingest.similarity import Text, compare
from core.ingest.wording import clean_headline, clean_lead
from tests.support.stories_text import RATES

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIRE = (
    "Seven people were killed and dozens injured when a fire swept through a crowded market "
    "in Lagos on Saturday, emergency officials said."
)


def text(title: str, lead: str = "", hours: float = 0, source: str | None = None) -> Text:
    return Text(title, lead, DAY + timedelta(hours=hours), source)


SAME = {
    "wire copy with credit and dateline": (
        text(
            "Regulator opens probe into airline refunds (AP)",
            "WASHINGTON (AP) - The transportation regulator on Thursday opened an "
            "investigation into whether three large airlines delayed refunds for "
            "cancelled flights.",
            source="wire.example.org",
        ),
        text(
            "Regulator Opens Probe Into Airline Refunds - The Daily Courier",
            "The transportation regulator on Thursday opened an investigation into whether "
            "three large airlines delayed refunds for cancelled flights...",
            2,
            "courier.example.net",
        ),
    ),
    "rewritten headline, identical lead": (
        text("Central bank holds rates steady", RATES, source="wire.example.org"),
        text(
            "Rates unchanged as policymakers wait for inflation data",
            RATES,
            1,
            "finance.example.com",
        ),
    ),
    "numbers written as words": (
        text("Seven killed in Lagos market fire", "LAGOS (Wire) - " + FIRE, source="a.example"),
        text("7 killed in Lagos market fire", FIRE, 1, "b.example"),
    ),
    "thousands separator": (
        text("Automaker to cut 1,000 jobs in Europe"),
        text("Automaker to cut 1000 jobs in Europe"),
    ),
    "update tag": (
        text("Update 2: Tokyo Stocks Finish 2.6 Percent Higher"),
        text("Tokyo stocks finish 2.6 percent higher (AP)"),
    ),
    "same headline over two excerpts of one report": (
        text(
            "Harbor authority names new chief engineer",
            "The harbor authority on Thursday named Maria Lind as chief engineer, replacing "
            "Tom Berg, who retired in June after twenty years.",
            source="a.example",
        ),
        text(
            "Harbor authority names new chief engineer",
            "Maria Lind takes over as the port prepares a two-year dredging project and a "
            "new container terminal on the north quay.",
            1,
            "b.example",
        ),
    ),
    "opening sentence reworded under another headline": (
        text(
            "Chipmaker unveils low-cost web device for first-time users",
            "Orbis Devices has unveiled a low-cost internet access device that could cost a "
            "few hundred dollars, aimed at first-time technology users in rural markets.",
            source="wire.example.org",
        ),
        text(
            "Orbis launches cheap net terminal",
            "Orbis Devices is launching a low-cost internet access device dubbed Pico, "
            "targeted at first-time computer users in rural markets.",
            3,
            "tech.example.net",
        ),
    ),
    "headline with a clause dropped, opening in the same order": (
        text(
            "Harbor pilots end strike to save port season",
            "The harbor pilots' union ended its nine-day strike on Friday and apologised to "
            "shippers after talks with the port authority, officials said.",
            source="a.example",
        ),
        text(
            "Harbor pilots end strike",
            "HARBOR CITY (Wire) - Pilots went back to work on Friday, ending nine days of "
            "strike, and apologised to shippers as the port authority counted the cost.",
            2,
            "b.example",
        ),
    ),
}

DIFFERENT = {
    "an update whose toll changed": (
        text(
            "Two car bombs kill 10 in Harbor City",
            "Two car bombs shook the capital in quick succession on Sunday, killing at least "
            "10 people and wounding 16, police said.",
            source="a.example",
        ),
        text(
            "Harbor City car bombs kill 11",
            "Two car bombs shook the capital in quick succession on Sunday, killing at least "
            "11 people and wounding 16, officials said.",
            3,
            "b.example",
        ),
    ),
    "one event, two reports in their own words": (
        text(
            "Harbor pilots end strike",
            "Ships began moving again on Saturday as pilots returned to work, but shippers "
            "said the backlog at the container terminal would take a week to clear.",
            source="a.example",
        ),
        text(
            "Harbor pilots end strike to save port season",
            "The pilots' union voted late on Friday to go back to work, its leader said, "
            "citing pressure from fishermen and ferry operators.",
            2,
            "b.example",
        ),
    ),
    "daily briefing, next day": (
        text(
            "Here's what you need to know today",
            "Good morning. Lawmakers return to the capital with a budget deadline eight days "
            "away, and the central bank publishes its minutes this afternoon.",
            source="news.example.com",
        ),
        text(
            "Here's what you need to know today",
            "Good morning. A storm system is moving up the east coast, airports in three "
            "states have cancelled flights, and the jobs report lands at 8:30.",
            24,
            "news.example.com",
        ),
    ),
    "live page, two days": (
        text(
            "Live: Ukraine war latest",
            "Air raid alerts sounded across the east overnight; officials say two power "
            "stations were hit and repairs could take a week.",
        ),
        text(
            "Live: Ukraine war latest",
            "Foreign ministers meet in Brussels today to discuss a new aid package, while "
            "grain exports resumed from the southern ports.",
            24,
        ),
    ),
    "reply in a thread, same hour": (
        text(
            "Re: Release schedule for 2.0",
            "I would rather slip the release by a week than ship with the migration bug "
            "open. Can we move the freeze to the 14th?",
            source="lists.example.org",
        ),
        text(
            "Re: Release schedule for 2.0",
            "Agreed on the freeze date. I have the changelog draft ready and will post it to "
            "the wiki tonight so translators can start.",
            1,
            "lists.example.org",
        ),
    ),
    "the same informative headline a day apart, no lead": (
        text("City council approves new stadium plan"),
        text("City council approves new stadium plan", hours=26),
    ),
    "photo of the day": (text("Photo of the day"), text("Photo of the day", hours=1)),
    "market wrap, rise and fall": (
        text(
            "Stocks rise as tech shares rally",
            "U.S. stocks closed higher on Monday, led by technology shares, as investors bet "
            "that cooling inflation would let the central bank cut rates sooner.",
        ),
        text(
            "Stocks fall as tech shares slide",
            "U.S. stocks closed lower on Tuesday, dragged down by technology shares, as "
            "investors worried that stubborn inflation would delay rate cuts.",
            24,
        ),
    ),
    "market wrap, bare headlines": (text("Stocks rise"), text("Stocks fall", hours=24)),
    "Q3 and Q4": (
        text("Acme Corp reports Q3 results"),
        text("Acme Corp reports Q4 results"),
    ),
    "third and fourth quarter": (
        text(
            "Globex third-quarter profit rises 12%",
            "Globex Inc said on Tuesday its third-quarter net profit rose 12 percent on "
            "strong demand for its industrial sensors.",
        ),
        text(
            "Globex fourth-quarter profit rises 9%",
            "Globex Inc said on Tuesday its fourth-quarter net profit rose 9 percent on "
            "strong demand for its industrial sensors.",
        ),
    ),
    "one template, two states": (
        text(
            "Winter storm warning issued for Colorado",
            "The National Weather Service issued a winter storm warning for much of Colorado "
            "from Friday evening through Sunday, with heavy snow in the mountains.",
        ),
        text(
            "Winter storm warning issued for Wyoming",
            "The National Weather Service issued a winter storm warning for much of Wyoming "
            "from Friday evening through Sunday, with heavy snow in the mountains.",
        ),
    ),
    "one template, other figures": (
        text(
            "Insider sells shares of Initech",
            "Initech insider Bill Lumbergh sold 1,500 shares of the stock in a transaction on "
            "Friday, July 5th. The shares were sold at an average price.",
        ),
        text(
            "Insider Selling: Initech insider sells stock",
            "Initech insider Bill Lumbergh sold 99,342 shares of the stock in a transaction "
            "on Friday, June 21st. The shares were sold at an average price.",
        ),
    ),
    "version numbers": (
        text("Apple releases iOS 17.1 with bug fixes"),
        text("Apple releases iOS 17.2 with bug fixes"),
    ),
    "a series' standing introduction": (
        text(
            "League Update: The Early Leader",
            "The Harbor League is a competitive twelve-team fantasy baseball league run by "
            "volunteers. The settings are standard rotisserie categories.",
            source="a.example",
        ),
        text(
            "League Update: Early Trades",
            "The Harbor League is a competitive twelve-team fantasy baseball league run by "
            "volunteers. The settings are standard rotisserie categories.",
            140,
            "a.example",
        ),
    ),
    "boilerplate lead": (
        text("They didn't.", "Continue reading on Medium"),
        text("Finding value", "Continue reading on Medium"),
    ),
    "one word swapped, no lead to tell": (
        text("Governor signs budget bill in Oregon"),
        text("Governor signs budget bill in Nevada"),
    ),
}


@pytest.mark.parametrize("case", sorted(SAME))
def test_copies_of_one_article_match(case):
    a, b = SAME[case]
    assert compare(a, b).score >= THRESHOLD, compare(a, b)
    assert compare(b, a).score >= THRESHOLD


@pytest.mark.parametrize("case", sorted(DIFFERENT))
def test_different_articles_do_not_match(case):
    a, b = DIFFERENT[case]
    assert compare(a, b).score < THRESHOLD, compare(a, b)
    assert compare(b, a).score < THRESHOLD


def test_a_veto_names_its_reason():
    assert compare(*DIFFERENT["Q3 and Q4"]).rule == "headline numbers differ"
    assert "opposite movements" in compare(*DIFFERENT["market wrap, bare headlines"]).rule
    assert "name" in compare(*DIFFERENT["one template, two states"]).rule


def test_a_score_under_the_floor_is_not_worked_out():
    a, b = text("Acme Corp reports Q3 results"), text("Harbor authority names new engineer")
    assert compare(a, b, floor=THRESHOLD).rule == "below the threshold"
    assert compare(a, b).rule == "same headline"


@pytest.mark.parametrize(
    ("title", "cleaned"),
    [
        (
            "Delta Pilots Ratify Concession Package (Reuters)",
            "Delta Pilots Ratify Concession Package",
        ),
        ("Update 1: Sysco Profit Climbs 8 Percent", "Sysco Profit Climbs 8 Percent"),
        ("UPDATE 2-Court ruling to aid card issuers", "Court ruling to aid card issuers"),
        ("Earthquake Rocks Bali, One Dead-Radio", "Earthquake Rocks Bali, One Dead"),
        ("Wildfire forces evacuation - The Daily Courier", "Wildfire forces evacuation"),
        ("Toronto Raptors Team Report - November 13", "Toronto Raptors Team Report - November 13"),
        ("Release notes (Part 2)", "Release notes (Part 2)"),
    ],
)
def test_source_tags_leave_the_headline(title, cleaned):
    assert clean_headline(title) == cleaned


@pytest.mark.parametrize(
    ("lead", "cleaned"),
    [
        ("NEW YORK (Reuters) - Stocks rose.", "Stocks rose."),
        ("AP - Stocks rose.", "Stocks rose."),
        ("(Sports Network) - The Royals won.", "The Royals won."),
        ("LOS ANGELES Sept. 13, 2004 - A consortium agreed.", "A consortium agreed."),
        ("BAGHDAD, Iraq -- Two car bombs exploded.", "Two car bombs exploded."),
        ("Stocks rose - and fell.", "Stocks rose - and fell."),
    ],
)
def test_datelines_leave_the_lead(lead, cleaned):
    assert clean_lead(lead) == cleaned

"""OPML import: feeds out of nested outlines; hostile or oversized documents refused."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.news.opml import MAX_OPML_BYTES, parse_opml

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="News">
      <outline type="rss" text="BBC" xmlUrl="https://feeds.bbci.co.uk/news/rss.xml"/>
      <outline type="rss" text="Dup" xmlUrl="https://feeds.bbci.co.uk/news/rss.xml"/>
      <outline type="rss" text="FTP" xmlUrl="ftp://example.org/feed"/>
    </outline>
    <outline type="rss" text="Go" xmlUrl="https://go.dev/blog/feed.atom" htmlUrl="https://go.dev/blog"/>
    <outline text="a folder without feeds"/>
  </body>
</opml>"""


def test_feeds_of_nested_outlines_once_each_in_order():
    assert [f.url for f in parse_opml(OPML)] == [
        "https://feeds.bbci.co.uk/news/rss.xml",
        "https://go.dev/blog/feed.atom",
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            b'<opml><body><outline xmlUrl="http://x/&lol;"/></body></opml>',
            "DOCTYPE",
        ),
        (b'<!DOCTYPE opml SYSTEM "http://127.0.0.1:1/x.dtd"><opml/>', "DOCTYPE"),
        (b"<opml><body>", "well-formed"),
        (b"<rss><channel/></rss>", "not an OPML"),
        (b"<opml>" + b" " * MAX_OPML_BYTES + b"</opml>", "larger"),
    ],
)
def test_hostile_or_wrong_documents_are_refused(document, message):
    with pytest.raises(ValidationError, match=message):
        parse_opml(document)


def test_more_feeds_than_a_search_follows_is_refused():
    outlines = b"".join(b'<outline xmlUrl="https://x.org/%d"/>' % i for i in range(101))
    with pytest.raises(ValidationError, match="at most"):
        parse_opml(b"<opml><body>" + outlines + b"</body></opml>")

"""``newsmon demo``: a demo organization watching feeds newsmon serves itself on
127.0.0.1, delivering to a ``file`` channel and a local signed-webhook receiver.

The generated feeds (three "outlets") publish a new item every ``ITEM_EVERY_S`` seconds.
What the demo shows:

- a real query (:data:`DEMO_QUERY`): stories on other topics are not taken; a matching
  story with an excluded word (:data:`DEMO_EXCLUDED`) is kept, marked filtered with its
  reason (``GET /stories?filtered=true``), never delivered;
- wire copies: every third story runs in all three outlets at their own URLs with the
  same text, so it is clustered and delivered once, with "also reported by" the others;
- URL variants (tracking parameters, fragments) deduplicated by canonical URL;
- quiet hours for the first ``QUIET_MINUTES`` minutes of the demo: only an urgent story
  (score at least :data:`URGENT_SCORE`, the "Breaking" items) breaks through, the rest
  waits for the end of the quiet hours;
- the one-line explanation ("Why: ...") under every story of a digest.

The search runs every minute, and as soon as each feed's first news is in;
digests land in the file channel folder (``<data_dir>/digests/<organizationId>/demo``)
and in the log of the receiver. The ``demo`` organization is kept across runs (its API
keys too); its search and channels are made anew at every start, as the feeds' port is.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from sqlalchemy import Engine, delete, select

from core.clock import utcnow
from core.config import Settings
from core.db.models import Channel, News, NewsChannel, Organization
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.send_file import channel_folder
from core.news.searches import add_schedule, create_search
from core.tenancy.organizations import create_organization

log = logging.getLogger(__name__)

#: Slug of the demo organization (kept across runs; its search and channels are remade).
DEMO_SLUG = "demo"
#: Name of the demo search.
DEMO_SEARCH = "Demo news"
#: The demo search's query: the topics below that match it are delivered.
DEMO_QUERY = '"open source" OR battery OR rail OR "heat wave" OR breaking'
#: A story with any of these words is kept, marked filtered with the word as its reason.
DEMO_EXCLUDED = ("talks",)
#: Seconds between two new items of the generated feeds.
ITEM_EVERY_S = 20
#: The demo file channel's folder, below the organization's file channel folder.
DEMO_FOLDER = "demo"
#: Items already "published" when the demo starts.
BACKLOG_ITEMS = 12
#: Items per generated feed document (the newest).
ITEMS_PER_FEED = 30
#: Minutes of quiet hours from the demo's start (only urgent stories go out meanwhile).
QUIET_MINUTES = 1
#: The schedule's first fire is its first minute at least this long after the start: the
#: feeds' first news (which starts runs itself) comes before it, even on a slow start.
FIRST_FIRE_AFTER = timedelta(seconds=30)
#: Score at which a story breaks through quiet hours.
URGENT_SCORE = 0.9
OUTLETS = ("daily-planet", "gotham-gazette", "metro-news")
#: Topics in turn: some off the query, one excluded ("talks"), "Breaking" ones urgent.
TOPICS = (
    "Open source AI model tops benchmark",
    "City council approves new bike lanes",
    "Heat wave breaks June records",
    "Startup raises funds for battery recycling",
    "Local team wins championship in overtime",
    "Breaking: rail strike halts open source battery plant",
    "Researchers map deep-sea vents",
    "Rail strike talks resume on Monday",
)


def _item_xml(base: str, outlet: str, number: int, started: datetime) -> str:
    topic = TOPICS[number % len(TOPICS)]
    published = started + timedelta(seconds=ITEM_EVERY_S * (number - BACKLOG_ITEMS))
    # Every third story is a wire copy: in all outlets, each at its own URL, same text.
    wire = number % 3 == 0
    slug = f"wire-{number}" if wire else f"story-{number}"
    link = f"{base}/{outlet}/{slug}"
    if number % 2:
        link += f"?utm_source={outlet}&utm_medium=rss#top"
    lead = f"(Wire) {topic.lower()}." if wire else f"{outlet} reports: {topic.lower()}."
    return (
        f"<item><title>{escape(f'{topic} (#{number})')}</title><link>{escape(link)}</link>"
        f"<guid>{escape(link)}</guid><pubDate>{format_datetime(published)}</pubDate>"
        f"<description>{escape(lead)}</description></item>"
    )


def _feed(base: str, outlet: str, started: datetime) -> bytes:
    published = BACKLOG_ITEMS + int((utcnow() - started).total_seconds() // ITEM_EVERY_S)
    own = OUTLETS.index(outlet)
    numbers = [
        n
        for n in range(max(0, published - ITEMS_PER_FEED), published + 1)
        if n % 3 in (0, own)  # every third story (a wire copy) is in all outlets
    ]
    items = "".join(_item_xml(base, outlet, n, started) for n in reversed(numbers))
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{outlet}</title><link>{base}/{outlet}</link>"
        f"<description>newsmon demo feed</description>{items}</channel></rss>"
    ).encode()


class _DemoHandler(BaseHTTPRequestHandler):
    server: _DemoServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo logs what matters itself."""

    def do_GET(self) -> None:
        outlet = self.path.strip("/").removesuffix(".xml")
        if outlet not in OUTLETS:
            self.send_error(404)
            return
        body = _feed(self.server.base, outlet, self.server.started)
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()
        log.info(
            "demo receiver: webhook %s (%d bytes, signed %s)",
            self.headers.get("webhook-id"),
            len(body),
            "yes" if self.headers.get("webhook-signature") else "NO",
        )


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    base = ""
    started = datetime.now(UTC)


def start_demo_server() -> _DemoServer:
    """Feeds at ``/<outlet>.xml`` and a webhook receiver at ``/hook``, on 127.0.0.1."""
    server = _DemoServer(("127.0.0.1", 0), _DemoHandler)
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    server.started = utcnow()
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-server").start()
    return server


def set_up_demo(settings: Settings, engine: Engine, base: str) -> str:
    """Create the demo organization (or keep the one of an earlier run, with its keys)
    and make its search, schedule and channels anew; returns the organization id."""
    keyring = ch.load_keyring(settings)
    now = utcnow()
    with unit_of_work(engine) as session:
        org = session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG))
        if org is None:
            org = create_organization(session, name="Demo", slug=DEMO_SLUG)
        else:  # the feeds' port changed: the old search and channels point nowhere
            session.execute(delete(News).where(News.organizationId == org.id))
            session.execute(delete(Channel).where(Channel.organizationId == org.id))
        # Quiet hours are written to the minute: they end at the first minute boundary
        # at least QUIET_MINUTES away.
        quiet_end = (now + timedelta(minutes=QUIET_MINUTES + 1)).replace(second=0, microsecond=0)
        news = create_search(
            session,
            org.id,
            name=DEMO_SEARCH,
            search_query={
                "query": DEMO_QUERY,
                "sources": [{"url": f"{base}/{o}.xml"} for o in OUTLETS],
            },
            relevance_settings={"excludedTerms": list(DEMO_EXCLUDED)},
            wait_settings={
                "mode": "immediate",
                "quietHours": {
                    "start": (now - timedelta(minutes=1)).strftime("%H:%M"),
                    "end": quiet_end.strftime("%H:%M"),
                    "timezone": "UTC",
                },
                "urgentScore": URGENT_SCORE,
            },
        )
        # No run is made here: the feeds' first news starts the runs waiting for it, and
        # the schedule fires every minute after that.
        add_schedule(session, org.id, news.id, cron_expr="* * * * *", now=now + FIRST_FIRE_AFTER)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        configs = {
            "file": {"directory": DEMO_FOLDER},
            "webhook": {"url": f"{base}/hook", "secret": secret},
        }
        for type_, raw in configs.items():
            channel = Channel(organizationId=org.id, type=type_, name=f"demo {type_}", config={})
            session.add(channel)
            session.flush()
            valid = ch.validate_config(type_, raw)
            channel.config = ch.seal_config(type_, valid, keyring, org.id, channel.id)
            session.add(NewsChannel(organizationId=org.id, newsId=news.id, channelId=channel.id))
        org_id = org.id
    folder = settings.file_channel_folder
    log.info(
        "demo: feeds at %s/{%s}.xml, digests in %s, webhook receiver at %s/hook",
        base,
        ",".join(OUTLETS),
        channel_folder(folder, org_id, DEMO_FOLDER).resolve() if folder else "(file channels off)",
        base,
    )
    log.info(
        "demo: query %s; quiet hours until %s UTC (only urgent stories, score >= %.2f, go "
        "out meanwhile); filtered stories: GET /stories?filtered=true",
        DEMO_QUERY,
        quiet_end.strftime("%H:%M"),
        URGENT_SCORE,
    )
    return org_id

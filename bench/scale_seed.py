"""Seeding the scale bench's database in steady state, with COPY.

The database looks like one that has been running for a while, so the bench measures
the steady state rather than a first-fetch storm: every source was fetched before (its
ETag is the farm's current one, its next fetch spread over its interval), its current
items are stored as entries (two hours old), every search has had a run a minute ago
(``lastRun``: its next run looks only at entries stored since, less the lookback margin)
and has one delivered story (so its next run is not a first run), and each schedule's
``nextRun`` is its next fire.

Searches follow 1-8 sources drawn by popularity (a Zipf-like law over source rank, so
the fast-publishing top sources are followed by thousands of searches); organizations
hold 10 searches each and one webhook channel to the bench's receiver.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from bench import scale_farm as farm
from core.cron.schedule import next_fires
from core.delivery import channels as ch
from core.feeds import parse_feed
from core.feeds.canonical_url import canonicalize
from core.ids import new_id
from core.ingest.source_clock import ClockPolicy
from core.ingest.stories import LOOKBACK_MARGIN
from core.secrets import parse_keys

#: Searches per organization.
SEARCHES_PER_ORG = 10
#: Cron classes of the searches: (share, label, period in minutes); each schedule gets
#: a random minute offset within its period.
CRON_MIX = (
    (0.02, "1min", 1),
    (0.18, "5min", 5),
    (0.40, "15min", 15),
    (0.40, "hourly", 60),
)
#: Sources per search: 1..len(weights), weighted.
SOURCES_PER_SEARCH_WEIGHTS = (20, 25, 20, 12, 9, 6, 5, 3)
#: Zipf-like popularity: source rank r is drawn with weight 1 / (r + POPULARITY_OFFSET).
POPULARITY_OFFSET = 10
#: Age of the seeded entries, stories and last runs.
SEED_AGE = timedelta(hours=2)
#: How long ago every search last ran.
LAST_RUN_AGO = timedelta(minutes=1)
#: Secret of the bench's webhook channels (the receiver does not verify signatures).
WEBHOOK_SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1rZXktMzItYnl0ZXMhIQ=="


@dataclass
class Seeded:
    """What the bench needs to know about the seeded world."""

    searches: int
    sources: int
    organizations: int
    links: int
    entries: int
    cron_class: dict[str, str] = field(default_factory=dict)  # news id -> cron label
    class_counts: dict[str, int] = field(default_factory=dict)


def cron_for(rng: random.Random) -> tuple[str, str]:
    _, label, minutes = rng.choices(CRON_MIX, weights=[share for share, _, _ in CRON_MIX])[0]
    offset = rng.randrange(minutes)
    if minutes == 1:
        return label, "* * * * *"
    if minutes == 60:
        return label, f"{offset} * * * *"
    return label, f"{offset}-59/{minutes} * * * *"


def url_key(url: str) -> str:
    """The URL key of a farm item or feed link (``http://`` dropped), checked against
    :func:`canonicalize` on a sample by :func:`check_keys` (which is too slow to call
    on every one of a million URLs)."""
    return url.removeprefix("http://")


def check_keys(urls: Sequence[str], sample: int = 200) -> None:
    rng = random.Random(3)
    for url in rng.sample(list(urls), min(sample, len(urls))):
        if canonicalize(url) != url_key(url):
            raise RuntimeError(f"farm URL {url} keys as {canonicalize(url)}, not {url_key(url)}")


def copy_rows(
    engine: Engine, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY ``rows`` into ``table`` in one transaction."""
    names = ", ".join(f'"{c}"' for c in columns)
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def seed(
    engine: Engine,
    *,
    searches: int,
    feeds: int,
    epoch: float,
    ports: dict[int, int],
    receiver_url: str,
    channel_key: str,
    now: datetime,
    seed_value: int = 1,
    start_due: bool = False,
) -> Seeded:
    """Fill a migrated, empty database (see the module docstring); returns its shape.

    ``start_due``: every source and schedule is due at ``now`` instead (a cold start
    after an outage: the whole backlog at once)."""
    rng = random.Random(seed_value)
    stamp = now.astimezone(UTC)
    if SEED_AGE <= LAST_RUN_AGO + LOOKBACK_MARGIN:
        raise RuntimeError("seeded entries must be older than what a next run looks back on")
    old = stamp - SEED_AGE
    last_run = stamp - LAST_RUN_AGO
    keyring = parse_keys(channel_key)
    policy = ClockPolicy()

    def base(host: int) -> str:
        return f"http://{farm.host_address(host)}:{ports[host]}"

    # Sources, in popularity order, with their current items as entries.
    source_ids = [new_id() for _ in range(feeds)]
    source_rows: list[tuple[Any, ...]] = []
    entry_rows: list[tuple[Any, ...]] = []
    first_entry: dict[str, tuple[str, str, str, str]] = {}
    sample_urls: list[str] = []
    now_s = stamp.timestamp()
    for index, source_id in enumerate(source_ids):
        p = farm.profile(index, feeds)
        newest = farm.newest_item(p, epoch, now_s)
        interval = min(policy.max_interval.total_seconds(), max(300.0, p.gap_s))
        due = stamp if start_due else stamp + timedelta(seconds=interval * rng.random())
        url = base(p.host) + farm.feed_path(index)
        source_rows.append(
            (
                source_id,
                "feed",
                url,
                f"Feed {index}",
                farm.etag(p, newest),
                "ok",
                0,
                200,
                due - timedelta(seconds=interval),
                due - timedelta(seconds=interval),
                due,
                int(interval),
                stamp,
                stamp,
            )
        )
        if not p.serves_feed:
            continue
        for k in range(newest, max(-1, newest - p.items), -1):
            link = farm.item_url(base(p.host), p, k)
            title, summary = farm.item_words(p, k)
            entry_id = new_id()
            first_entry.setdefault(source_id, (entry_id, link, title, summary))
            published = datetime.fromtimestamp(int(farm.published_at(p, k, epoch)), UTC)
            entry_rows.append(
                (
                    entry_id,
                    source_id,
                    url_key(link),
                    link,
                    link,
                    title,
                    summary,
                    published,
                    hashlib.sha256(title.encode()).hexdigest(),
                    old,
                    old,
                )
            )
            if len(sample_urls) < 2000:
                sample_urls.append(link)
    check_keys(sample_urls)
    _check_parse(feeds, epoch, ports, now_s)

    # Organizations, channels, searches, schedules, links, marker stories.
    orgs = max(1, -(-searches // SEARCHES_PER_ORG))
    org_ids = [new_id() for _ in range(orgs)]
    org_rows = [
        (oid, f"Scale {i}", f"scale-{i}", True, stamp, stamp) for i, oid in enumerate(org_ids)
    ]
    channel_rows, channel_of = [], {}
    valid = ch.validate_config("webhook", {"url": receiver_url, "secret": WEBHOOK_SECRET})
    for oid in org_ids:
        cid = new_id()
        channel_of[oid] = cid
        sealed = ch.seal_config("webhook", valid, keyring, oid, cid)
        channel_rows.append(
            (cid, oid, "receiver", "webhook", json.dumps(sealed), True, "ok", 0, stamp, stamp)
        )
    weights = list(itertools.accumulate(1 / (r + POPULARITY_OFFSET) for r in range(feeds)))
    words = farm.vocabulary()
    fires: dict[str, datetime] = {}
    news_rows, schedule_rows, link_rows, nc_rows, story_rows = [], [], [], [], []
    result = Seeded(searches, feeds, orgs, 0, len(entry_rows))
    for i in range(searches):
        nid, oid = new_id(), org_ids[i // SEARCHES_PER_ORG]
        count = rng.choices(range(1, 9), weights=SOURCES_PER_SEARCH_WEIGHTS)[0]
        picked = sorted(set(rng.choices(range(feeds), cum_weights=weights, k=count)))
        urls = [source_rows[s][2] for s in picked]
        query = {"query": rng.choice(words), "sources": [{"type": "feed", "url": u} for u in urls]}
        news_rows.append(
            (nid, oid, f"search {i}", json.dumps(query), "{}", "{}", True, last_run, stamp, stamp)
        )
        label, cron = cron_for(rng)
        result.cron_class[nid] = label
        if cron not in fires:
            fires[cron] = stamp if start_due else next_fires(cron, "UTC", stamp, 1)[0]
        schedule_rows.append(
            (new_id(), oid, nid, cron, "UTC", "once", True, fires[cron], stamp, stamp)
        )
        for s in picked:
            link_rows.append((new_id(), oid, nid, source_ids[s], stamp, stamp))
        nc_rows.append((new_id(), oid, nid, channel_of[oid], stamp, stamp))
        marker: tuple[str | None, str, str, str] | None = next(
            (first_entry[source_ids[s]] for s in picked if source_ids[s] in first_entry), None
        )
        seen_id, seen_url, title, summary = marker or (
            None,
            f"https://seed.invalid/{nid}",
            "seed",
            "",
        )
        story_rows.append(
            (
                new_id(),
                oid,
                nid,
                seen_id,
                title,
                seen_url,
                url_key(seen_url),
                summary,
                "seed",
                old,
                0.5,
                False,
                True,
                old,
                old,
                old,
            )
        )
    result.links = len(link_rows)
    result.class_counts = dict(sorted(_count(result.cron_class.values()).items()))

    stamps = ["createdAt", "updatedAt"]
    copy_rows(engine, "organizations", ["id", "name", "slug", "isActive", *stamps], org_rows)
    copy_rows(
        engine,
        "sources",
        [
            "id",
            "type",
            "url",
            "title",
            "etag",
            "status",
            "failureCount",
            "lastStatusCode",
            "lastFetchedAt",
            "lastSuccessAt",
            "nextFetchAt",
            "fetchInterval",
            *stamps,
        ],
        source_rows,
    )
    copy_rows(
        engine,
        "entries",
        [
            "id",
            "sourceId",
            "urlKey",
            "canonicalUrl",
            "url",
            "title",
            "summary",
            "publishedAt",
            "contentHash",
            *stamps,
        ],
        entry_rows,
    )
    copy_rows(
        engine,
        "channels",
        [
            "id",
            "organizationId",
            "name",
            "type",
            "config",
            "isActive",
            "status",
            "consecutiveFailures",
            *stamps,
        ],
        channel_rows,
    )
    copy_rows(
        engine,
        "news",
        [
            "id",
            "organizationId",
            "name",
            "searchQuery",
            "relevanceSettings",
            "waitSettings",
            "isActive",
            "lastRun",
            *stamps,
        ],
        news_rows,
    )
    copy_rows(
        engine,
        "schedules",
        [
            "id",
            "organizationId",
            "newsId",
            "cronExpr",
            "timezone",
            "catchUp",
            "isActive",
            "nextRun",
            *stamps,
        ],
        schedule_rows,
    )
    copy_rows(
        engine, "newsSources", ["id", "organizationId", "newsId", "sourceId", *stamps], link_rows
    )
    copy_rows(
        engine, "newsChannels", ["id", "organizationId", "newsId", "channelId", *stamps], nc_rows
    )
    copy_rows(
        engine,
        "stories",
        [
            "id",
            "organizationId",
            "newsId",
            "entryId",
            "title",
            "url",
            "urlKey",
            "snippet",
            "sourceName",
            "publishedAt",
            "relevanceScore",
            "isFiltered",
            "wasDelivered",
            "foundAt",
            *stamps,
        ],
        story_rows,
    )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return result


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _check_parse(feeds: int, epoch: float, ports: dict[int, int], now_s: float) -> None:
    """The ingest path reads a farm document as the seeder writes its entries."""
    p = next(farm.profile(i, feeds) for i in range(feeds) if farm.profile(i, feeds).kind == "ok")
    base = f"http://{farm.host_address(p.host)}:{ports[p.host]}"
    newest = farm.newest_item(p, epoch, now_s)
    parsed = parse_feed(farm.render_feed(p, base, epoch, newest))
    for entry, k in zip(parsed.entries, range(newest, -1, -1), strict=False):
        link = farm.item_url(base, p, k)
        if (entry.url_key, entry.canonical_url) != (url_key(link), link):
            raise RuntimeError(f"ingest reads {link} as {entry.url_key} / {entry.canonical_url}")

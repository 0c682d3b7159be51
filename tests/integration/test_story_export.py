"""The story export holds memory constant whatever the number of rows it streams.

Each export runs in a fresh interpreter that reports its peak RSS (``ru_maxrss``, which
counts the database driver's buffers too, not only Python objects): exporting
``LARGE_ROWS`` stories must not take much more than exporting ``SMALL_ROWS``. Reading the
rows at once instead (no ``stream_results``: psycopg buffers the whole result, SQLAlchemy
builds every row) grows the peak by hundreds of MB at this size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from sqlalchemy import Engine, text

from core.db.session import unit_of_work
from tests.support import factories

#: Stories of the large export (about 500 bytes of text each).
LARGE_ROWS = 100_000
#: Stories of the small export the large one is held to.
SMALL_ROWS = 1_000
#: Most the peak RSS may grow from the small export to the large one.
MAX_GROWTH_MB = 30

_EXPORT = textwrap.dedent(
    """
    import json, resource, sys
    from core.db.session import make_engine
    from core.stories.export import export_stories
    from core.stories.filters import StoryFilter

    url, organization_id, news_id, fmt = sys.argv[1:5]
    engine = make_engine(url)
    size = lines = 0
    for chunk in export_stories(engine, organization_id, StoryFilter(news_id=news_id), fmt):
        size += len(chunk)
        lines += chunk.count(b"\\n")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bytes": size, "lines": lines, "peak_mb": peak_kb / 1024}))
    """
)

_PG_FILL = """
INSERT INTO stories (id, "organizationId", "newsId", title, url, "urlKey", snippet,
                     "relevanceScore", "isFiltered", "wasDelivered", "foundAt")
SELECT CAST(:news AS text) || lpad(g::text, 6, '0'), :org, :news,
       'Story number ' || g || ' of the export',
       'https://news.example/' || CAST(:news AS text) || '/' || g,
       'news.example/' || CAST(:news AS text) || '/' || g,
       repeat('lorem ipsum ', 35), 0.5, false, false,
       timestamp '2026-01-01' + g * interval '1 second'
FROM generate_series(1, :n) AS g
"""
_SQLITE_FILL = """
INSERT INTO stories (id, "organizationId", "newsId", title, url, "urlKey", snippet,
                     "relevanceScore", "isFiltered", "wasDelivered", "foundAt")
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
SELECT :news || printf('%06d', x), :org, :news, 'Story number ' || x || ' of the export',
       'https://news.example/' || :news || '/' || x, 'news.example/' || :news || '/' || x,
       replace(printf('%.35c', '*'), '*', 'lorem ipsum '), 0.5, 0, 0,
       datetime('2026-01-01', '+' || x || ' seconds')
FROM g
"""


def _fill(engine: Engine, rows: int) -> tuple[str, str]:
    """A search of a new organization with ``rows`` stories; its ids."""
    with unit_of_work(engine) as session:
        organization = factories.org(session, f"export-{rows}")
        search = factories.news(session, organization)
        fill = _PG_FILL if engine.dialect.name == "postgresql" else _SQLITE_FILL
        session.execute(text(fill), {"org": organization.id, "news": search.id, "n": rows})
        return organization.id, search.id


def _export(engine: Engine, organization_id: str, news_id: str, fmt: str) -> dict[str, float]:
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-c", _EXPORT, url, organization_id, news_id, fmt],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_memory_does_not_grow_with_the_rows_exported(db_engine: Engine) -> None:
    small = _fill(db_engine, SMALL_ROWS)
    large = _fill(db_engine, LARGE_ROWS)
    for fmt, extra_lines in (("csv", 1), ("ndjson", 0)):
        few = _export(db_engine, *small, fmt)
        many = _export(db_engine, *large, fmt)
        assert few["lines"] == SMALL_ROWS + extra_lines
        assert many["lines"] == LARGE_ROWS + extra_lines
        assert many["bytes"] > 40_000_000  # the large export is large indeed
        growth = many["peak_mb"] - few["peak_mb"]
        print(
            f"{db_engine.dialect.name} {fmt}: peak {few['peak_mb']:.0f} MB for {SMALL_ROWS} "
            f"rows, {many['peak_mb']:.0f} MB for {LARGE_ROWS} (+{growth:.1f} MB)"
        )
        assert growth < MAX_GROWTH_MB, (fmt, few, many)

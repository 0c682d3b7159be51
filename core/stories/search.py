"""Full-text search over an organization's stories, ranked, with highlighted matches.

PostgreSQL: ``websearch_to_tsquery`` (words, ``"quoted phrases"``, ``OR``, ``-word``) over
the GIN-indexed vector of :mod:`core.db.story_index`, ranked by ``ts_rank_cd``,
highlighted by ``ts_headline``. SQLite (embedded mode): the same query language translated
to an FTS5 expression (:func:`fts5_query`) over the ``storiesSearch`` table, ranked by
``bm25``, highlighted by FTS5's ``highlight`` and ``snippet``. Both stem English words.

Highlights are HTML: the story's text escaped, each match in ``<mark>...</mark>``; the
database marks matches with control characters that the escaped text cannot contain.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

from core.db.models import Story
from core.db.story_index import PG_VECTOR, SQLITE_TABLE, STORY_TEXT_CONFIG
from core.errors import ValidationError
from core.stories.filters import StoryFilter, story_conditions

#: Longest search text accepted.
MAX_SEARCH_QUERY_LENGTH = 256
#: Deepest a ranked result list can be paged (ranking everything past it is wasted work).
MAX_SEARCH_OFFSET = 1000
#: Words around the matches in a snippet highlight.
SNIPPET_WORDS = 30

_START, _STOP = "\x02", "\x03"
_PG_TITLE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"
_PG_SNIPPET_OPTIONS = (
    f"StartSel={_START}, StopSel={_STOP}, MaxWords={SNIPPET_WORDS}, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)
#: A word, a quoted phrase, or OR, as websearch_to_tsquery reads them.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class StoryHit:
    """A story that matched, its rank (higher is better) and its highlighted text."""

    story: Story
    rank: float
    title: str
    snippet: str | None


def search_stories(
    session: Session,
    organization_id: str,
    query: str,
    story_filter: StoryFilter,
    *,
    limit: int,
    offset: int = 0,
) -> list[StoryHit]:
    """The organization's stories matching ``query`` (and the filter), best first."""
    query = query.strip()
    if not query:
        raise ValidationError("must not be blank", field="q")
    if len(query) > MAX_SEARCH_QUERY_LENGTH:
        raise ValidationError(f"at most {MAX_SEARCH_QUERY_LENGTH} characters", field="q")
    if not 0 <= offset <= MAX_SEARCH_OFFSET:
        raise ValidationError(f"a search pages at most {MAX_SEARCH_OFFSET} deep", "cursor")
    conditions = story_conditions(organization_id, story_filter)
    if session.get_bind().dialect.name == "postgresql":
        return _search_postgresql(session, query, conditions, limit, offset)
    return _search_sqlite(session, query, conditions, limit, offset)


def _search_postgresql(
    session: Session,
    query: str,
    conditions: list[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> list[StoryHit]:
    tsquery = func.websearch_to_tsquery(STORY_TEXT_CONFIG, query)
    vector: ColumnElement[Any] = literal_column(PG_VECTOR)
    rank = func.ts_rank_cd(vector, tsquery).label("rank")
    statement = (
        select(
            Story,
            rank,
            func.ts_headline(STORY_TEXT_CONFIG, Story.title, tsquery, _PG_TITLE_OPTIONS),
            func.ts_headline(
                STORY_TEXT_CONFIG, func.coalesce(Story.snippet, ""), tsquery, _PG_SNIPPET_OPTIONS
            ),
        )
        .where(vector.op("@@")(tsquery), *conditions)
        .order_by(rank.desc(), Story.foundAt.desc(), Story.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return _hits(session, statement)


def _search_sqlite(
    session: Session,
    query: str,
    conditions: list[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> list[StoryHit]:
    expression = fts5_query(query)
    if expression is None:
        return []
    fts = table(SQLITE_TABLE, column("storyId"))
    whole: ColumnElement[Any] = literal_column(f'"{SQLITE_TABLE}"')  # the row, in FTS5 calls
    bm25 = func.bm25(whole, type_=Float)
    statement = (
        select(
            Story,
            (-bm25).label("rank"),
            func.highlight(whole, 0, _START, _STOP),
            func.snippet(whole, 1, _START, _STOP, " … ", SNIPPET_WORDS),
        )
        .select_from(fts)
        .join(Story, Story.id == fts.c.storyId)
        .where(whole.op("MATCH")(expression), and_(*conditions))
        .order_by(bm25, Story.foundAt.desc(), Story.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return _hits(session, statement)


def _hits(session: Session, statement: Select[Story, float, str, str]) -> list[StoryHit]:
    """Run a search whose rows are (story, rank, marked title, marked snippet)."""
    return [
        StoryHit(story, float(score), _marked(title), _marked(snippet) if story.snippet else None)
        for story, score, title, snippet in session.execute(statement)
    ]


def fts5_query(query: str) -> str | None:
    """``query`` in websearch syntax as an FTS5 expression: every word or phrase quoted
    (so no character is FTS5 syntax), implicit AND, ``OR`` between terms, ``-term``
    excluded. None when nothing is left to look for (only exclusions)."""
    wanted: list[str] = []
    excluded: list[str] = []
    pending_or = False
    for match in _TOKEN.finditer(query):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if word is not None and word == "OR":
            pending_or = bool(wanted)
            continue
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, word = "-", word[1:]
        term = phrase if phrase is not None else word
        if not term or not re.search(r"\w", term):
            continue
        quoted = '"' + term.replace('"', '""') + '"'
        if negated:
            excluded.append(quoted)
        elif pending_or and wanted:
            wanted[-1] = f"{wanted[-1]} OR {quoted}"
        else:
            wanted.append(quoted)
        pending_or = False
    if not wanted:
        return None
    expression = " AND ".join(f"({w})" for w in wanted)
    if excluded:
        expression = f"({expression}) NOT ({' OR '.join(excluded)})"
    return expression


def _marked(value: str | None) -> str:
    """Escape for HTML, then turn the database's match marks into ``<mark>`` tags."""
    escaped = html.escape(value or "", quote=False)
    return escaped.replace(_START, "<mark>").replace(_STOP, "</mark>")

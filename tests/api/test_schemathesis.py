"""Fuzzing the OpenAPI spec with schemathesis, every check on (row 59): no 5xx,
schema-conformant answers, 405 with a correct ``Allow``, missing or invalid keys refused
with 401 (``ignored_auth``), data the document refuses is refused
(``negative_data_rejection``) and data it accepts is accepted (``positive_data_acceptance``).

Runs in-process (``from_asgi``) on SQLite with a few examples per operation, to stay fast.
Channel targets resolve through an injected resolver to a public address (nothing is
sent: the test send is left out), so no name lookup leaves the machine.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from api.app import create_app
from api.routes.usage import MONTH_PATTERN
from core.clock import utcnow
from core.config import Settings
from core.db.session import make_engine, unit_of_work
from core.delivery.deliveries import SendContext
from core.fetch import GuardPolicy, build_client
from core.news.providers import ProviderType
from core.secrets import generate_key_string, parse_keys
from core.tenancy.api_keys import create_api_key, create_operator_key
from core.tenancy.members import OWNER_ROLE, add_member, user_for_email
from core.usage.months import MAX_MONTHS_PER_QUERY, month_of
from tests.api.conftest import ALL_PERMISSIONS, FakeClock
from tests.support import factories
from tests.support.databases import migrated_sqlite_template, sqlite_copy

#: Examples generated per operation (kept small: the suite must stay fast).
EXAMPLES_PER_OPERATION = 10
#: What every channel target resolves to: a public address (never contacted here).
PUBLIC_ADDRESS = "93.184.215.14"

_WORD = st.from_regex(r"[a-z]{1,12}", fullmatch=True)
#: Valid values of the string formats the OpenAPI document names beyond JSON Schema's own
#: (each is described in the document; these draw examples of it).
FORMATS: dict[str, st.SearchStrategy[str]] = {
    "news-query": st.one_of(
        _WORD,
        st.builds("{} AND {}".format, _WORD, _WORD),
        st.builds('"{} {}" OR {}'.format, _WORD, _WORD, _WORD),
        st.builds("{} AND NOT ({} OR {})".format, _WORD, _WORD, _WORD),
    ),
    "http-url": st.builds("https://{}.example/{}".format, _WORD, _WORD),
    "term": st.one_of(_WORD, st.builds("{} {}".format, _WORD, _WORD)),
    "host-or-url": st.one_of(st.builds("{}.example".format, _WORD), st.just("https://x.example")),
    "language-tag": st.sampled_from(["en", "de", "pt-br", "fr", "ja"]),
    "cron": st.sampled_from(["*/15 * * * *", "0 9 * * 1-5", "@hourly", "30 6 1 * *"]),
    "time-zone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
    "email-address": st.builds("{}@{}.example".format, _WORD, _WORD),
    "host": st.builds("smtp.{}.example".format, _WORD),
    "apprise-url": st.builds("json://{}.example/notify".format, _WORD),
    "directory": st.builds("digests/{}".format, _WORD),
}
for _name, _strategy in FORMATS.items():
    schemathesis.openapi.format(_name, _strategy)


def _fuzz_app() -> tuple[Any, str, str]:
    directory = Path(tempfile.mkdtemp(prefix="newsmon-fuzz-"))
    engine = make_engine(sqlite_copy(migrated_sqlite_template(directory), directory))
    with unit_of_work(engine) as session:
        organization = factories.org(session, "fuzz")
        owner = user_for_email(session, "owner@fuzz.example")
        add_member(session, organization.id, owner.id, OWNER_ROLE)
        key = create_api_key(session, organization.id, name="fuzz", permissions=ALL_PERMISSIONS)
        operator = create_operator_key(session, name="fuzz operator")
    app = create_app(Settings(), engine, clock=FakeClock())
    policy = GuardPolicy.from_allowlist([], deadline_s=5.0)
    app.state.send_context = SendContext(
        keyring=parse_keys(generate_key_string()),
        client=build_client(policy),
        policy=policy,
        resolver=lambda _host, _port: [PUBLIC_ADDRESS],
        file_root=directory / "digests",
    )
    app.state.fetch_resolver = lambda _host, _port: [PUBLIC_ADDRESS]  # feeds of OPML imports
    return app, key.key, operator.key


APP, KEY, OPERATOR_KEY = _fuzz_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

#: Provider source types (each needs query text: its own or the search's).
PROVIDERS = set(ProviderType.__args__)  # type: ignore[attr-defined]


def _follows_cross_field_rules(body: object) -> bool:
    """Whether a body keeps the rules the document states in words, across fields: quiet
    hours whose ``start`` and ``end`` differ, query text for every provider source."""
    if isinstance(body, list):
        return all(_follows_cross_field_rules(item) for item in body)
    if not isinstance(body, dict):
        return True
    quiet = body.get("quietHours")
    if isinstance(quiet, dict) and quiet.get("start") == quiet.get("end"):
        return False
    sources = body.get("sources")
    if isinstance(sources, list):
        text = body.get("query") if isinstance(body.get("query"), str) else ""
        for source in sources:
            if isinstance(source, dict) and str(source.get("type")) in PROVIDERS:
                own = source.get("query")
                if not ((own if isinstance(own, str) and own else text) or "").strip():
                    return False
    return all(_follows_cross_field_rules(value) for value in body.values())


def _usage_months_rules(query: Any) -> bool:
    """``GET /usage``'s parameters together: ``month`` or ``from``/``to``, never both;
    ``to`` only with ``from``, not before it, at most 24 months after."""
    if not isinstance(query, dict):
        return True
    month, first, last = query.get("month"), query.get("from"), query.get("to")
    given = [v for v in (month, first, last) if v is not None]
    if not all(isinstance(v, str) and re.fullmatch(MONTH_PATTERN, v) for v in given):
        return True  # a value the schema itself refuses
    if month is not None:
        return first is None and last is None
    if first is None:
        return last is None
    last = last or month_of(utcnow())  # through this month
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1
    return 1 <= span <= MAX_MONTHS_PER_QUERY


@schema.hook("filter_case")
def _cross_field_rules(_ctx: Any, case: Any) -> bool:
    if case.path.endswith("/usage") and not _usage_months_rules(case.query):
        return False
    return _follows_cross_field_rules(case.body)


#: Every tenant resource. ``POST /channels/{id}/test`` is left out: it really sends.
TENANT_PATHS = "^/(news|stories|runs|keys|channels|deliveries|members|invitations|teams|opml|usage)"


@schema.include(path_regex=TENANT_PATHS).exclude(path_regex="/test$").parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.slow
def test_api_conforms_to_its_spec(case: Any, tripwire: list[str]) -> None:
    case.call_and_validate(headers={"x-api-key": KEY})


@schema.include(path_regex="^/operator/").parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.slow
def test_operator_api_conforms_to_its_spec(case: Any, tripwire: list[str]) -> None:
    case.call_and_validate(headers={"x-api-key": OPERATOR_KEY})

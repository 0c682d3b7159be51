"""Health alerts on the real PostgreSQL, sent to real webhook receivers on 127.0.0.1:
one alert per broken thing per transition, through the organization's other working
channels, within its hourly alert budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine, delete, select, update
from standardwebhooks.webhooks import Webhook

from core.config import Settings
from core.db.models import Channel, HealthAlert, NewsSource, Organization, Run, Source
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.deliveries import SendContext
from core.fetch import build_client
from core.health.detect import HealthPolicy, check_health
from core.health.notify import NotifyResult, notify
from core.secrets import Keyring, generate_key_string
from scheduler.loop import Scheduler
from tests.support import factories
from tests.support.delivery import POLICY, SECRET
from tests.support.http_server import LocalHTTPServer, Response
from workers.broker import DELIVER_QUEUE, build_broker
from workers.health_alerts import enqueue_health_alerts
from workers.pipeline import build_pipeline

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY_DEFAULTS = HealthPolicy(source_failures=5, run_failures=3, alerts_per_hour=6)


@dataclass
class Tenant:
    """An organization whose searches follow sources and whose webhooks post to
    ``receiver`` (each channel on a path of its own: ``/hook/<name>``)."""

    engine: Engine
    key: str
    keyring: Keyring
    receiver: LocalHTTPServer
    ctx: SendContext
    org_id: str
    now: datetime = START

    def clock(self) -> datetime:
        return self.now

    def webhook(self, name: str, **fields: Any) -> str:
        with unit_of_work(self.engine) as session:
            channel = Channel(organizationId=self.org_id, type="webhook", name=name, **fields)
            session.add(channel)
            session.flush()
            url = self.receiver.url_for(f"/hook/{name}")
            valid = ch.validate_config("webhook", {"url": url, "secret": SECRET})
            channel.config = ch.seal_config("webhook", valid, self.keyring, self.org_id, channel.id)
            return channel.id

    def searches_following(self, count: int, url: str, **source_fields: Any) -> str:
        """``count`` searches following one source; returns the source id."""
        with unit_of_work(self.engine) as session:
            organization = session.get(Organization, self.org_id)
            assert organization is not None
            source = Source(url=url, **source_fields)
            session.add(source)
            session.flush()
            for i in range(count):
                search = factories.news(session, organization, name=f"search {i} on {url}")
                session.add(
                    NewsSource(organizationId=self.org_id, newsId=search.id, sourceId=source.id)
                )
            return source.id

    def set_source(self, source_id: str, **values: Any) -> None:
        with unit_of_work(self.engine) as session:
            session.execute(update(Source).where(Source.id == source_id).values(**values))

    def check(self, policy: HealthPolicy = POLICY_DEFAULTS) -> list[str]:
        with unit_of_work(self.engine) as session:
            return check_health(session, policy, now=self.now)

    def notify(self, policy: HealthPolicy = POLICY_DEFAULTS) -> NotifyResult:
        return notify(self.engine, self.org_id, self.ctx, policy=policy, clock=self.clock)

    def posts(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.receiver.requests if r.path == f"/hook/{name}"]


@pytest.fixture
def tenant(pg_engine: Engine) -> Iterator[Tenant]:
    key = generate_key_string()
    keyring = Keyring([key])
    client = build_client(POLICY)
    with LocalHTTPServer() as receiver:
        receiver.routes["/hook/team"] = Response(status=204)
        receiver.routes["/hook/ops"] = Response(status=204)
        with unit_of_work(pg_engine) as session:
            org_id = factories.org(session, "acme").id
        yield Tenant(
            pg_engine,
            key,
            keyring,
            receiver,
            SendContext(keyring=keyring, client=client, policy=POLICY),
            org_id,
        )
    client.close()


FAILING = {"status": "failing", "failureCount": 5, "lastError": {"error": "HTTP 503"}}
RECOVERED = {"status": "ok", "failureCount": 0, "lastError": None}


def test_a_dead_feed_fifty_searches_follow_is_one_alert_and_its_recovery_one_more(
    tenant: Tenant,
) -> None:
    tenant.webhook("team")
    source_id = tenant.searches_following(50, "https://feeds.example/dead.xml", **FAILING)

    assert tenant.check() == [tenant.org_id]
    result = tenant.notify()

    assert result.sent
    [alert] = tenant.posts("team")
    assert alert["type"] == "health"
    [change] = alert["alert"]["changes"]
    assert change["subject"] == "source"
    assert change["id"] == source_id
    assert change["state"] == "failing"
    assert change["url"] == "https://feeds.example/dead.xml"
    assert change["error"] == "HTTP 503"
    assert "keeps failing" in alert["alert"]["title"]

    # a second tick without change tells nothing
    tenant.now += timedelta(minutes=1)
    assert tenant.check() == []
    assert tenant.notify().skipped == "nothing to tell"
    assert len(tenant.posts("team")) == 1

    # it recovers: one recovery alert, then quiet again
    tenant.set_source(source_id, **RECOVERED)
    tenant.now += timedelta(minutes=1)
    assert tenant.check() == [tenant.org_id]
    assert tenant.notify().sent
    tenant.now += timedelta(minutes=1)
    assert tenant.check() == []
    tenant.notify()
    posts = tenant.posts("team")
    assert len(posts) == 2
    assert [c["state"] for c in posts[1]["alert"]["changes"]] == ["ok"]
    assert "works again" in posts[1]["alert"]["title"]


def test_a_source_below_the_failure_threshold_is_not_told(tenant: Tenant) -> None:
    tenant.webhook("team")
    tenant.searches_following(
        3, "https://feeds.example/flaky.xml", status="failing", failureCount=4
    )

    assert tenant.check() == []
    assert tenant.notify().skipped == "nothing to tell"
    assert tenant.receiver.requests == []


def test_a_failure_that_recovers_before_it_was_told_is_never_told(tenant: Tenant) -> None:
    ops = tenant.webhook("ops")
    tenant.webhook("team")
    source_id = tenant.searches_following(1, "https://feeds.example/blip.xml", **FAILING)
    with unit_of_work(tenant.engine) as session:  # no working channel yet: it waits
        session.execute(update(Channel).values(isActive=False))
    assert tenant.check() == [tenant.org_id]
    assert tenant.notify().skipped == "no working alert channel"

    tenant.set_source(source_id, **RECOVERED)
    with unit_of_work(tenant.engine) as session:
        session.execute(update(Channel).where(Channel.id == ops).values(isActive=True))
    assert tenant.check() == []
    assert tenant.notify().skipped == "nothing to tell"
    assert tenant.receiver.requests == []


def test_a_broken_channel_is_told_through_the_others_never_itself(tenant: Tenant) -> None:
    broken = tenant.webhook("team", status="broken", lastError="HTTP 410: endpoint gone")
    tenant.webhook("ops")

    assert tenant.check() == [tenant.org_id]
    assert tenant.notify().sent

    assert tenant.posts("team") == []
    [alert] = tenant.posts("ops")
    [change] = alert["alert"]["changes"]
    assert (change["subject"], change["id"], change["state"]) == ("channel", broken, "failing")
    assert change["error"] == "HTTP 410: endpoint gone"


def test_alerts_go_only_to_the_configured_alert_channels(tenant: Tenant) -> None:
    tenant.webhook("team")
    ops = tenant.webhook("ops")
    with unit_of_work(tenant.engine) as session:
        session.execute(
            update(Organization).where(Organization.id == tenant.org_id).values(alertChannels=[ops])
        )
    tenant.searches_following(2, "https://feeds.example/dead.xml", **FAILING)

    tenant.check()
    assert tenant.notify().sent

    assert len(tenant.posts("ops")) == 1
    assert tenant.posts("team") == []


def test_a_configured_alert_channel_that_is_broken_leaves_the_alert_waiting(
    tenant: Tenant,
) -> None:
    broken = tenant.webhook("team", status="broken")
    tenant.webhook("ops")
    with unit_of_work(tenant.engine) as session:
        session.execute(
            update(Organization)
            .where(Organization.id == tenant.org_id)
            .values(alertChannels=[broken])
        )

    tenant.check()
    assert tenant.notify().skipped == "no working alert channel"

    assert tenant.receiver.requests == []
    with unit_of_work(tenant.engine) as session:
        row = session.scalars(select(HealthAlert)).one()
        assert (row.state, row.notifiedState) == ("failing", None)
        assert row.lastError == "no working alert channel"


def test_past_the_hourly_budget_changes_wait_and_go_out_together(tenant: Tenant) -> None:
    tenant.webhook("team")
    one_per_hour = HealthPolicy(source_failures=5, run_failures=3, alerts_per_hour=1)
    tenant.searches_following(1, "https://feeds.example/first.xml", **FAILING)
    tenant.check(one_per_hour)
    assert tenant.notify(one_per_hour).sent

    second = tenant.searches_following(1, "https://feeds.example/second.xml", **FAILING)
    third = tenant.searches_following(1, "https://feeds.example/third.xml", **FAILING)
    tenant.now += timedelta(minutes=5)
    assert tenant.check(one_per_hour) == [tenant.org_id]
    skipped = tenant.notify(one_per_hour).skipped
    assert skipped is not None and skipped.startswith("alert limit reached (1 an hour)")
    assert len(tenant.posts("team")) == 1

    tenant.now += timedelta(hours=1)
    assert tenant.check(one_per_hour) == [tenant.org_id]
    assert tenant.notify(one_per_hour).sent
    posts = tenant.posts("team")
    assert len(posts) == 2
    assert {c["id"] for c in posts[1]["alert"]["changes"]} == {second, third}


def test_a_search_whose_runs_keep_failing_is_told_once(tenant: Tenant) -> None:
    tenant.webhook("team")
    with unit_of_work(tenant.engine) as session:
        organization = session.get(Organization, tenant.org_id)
        assert organization is not None
        search = factories.news(session, organization, name="Rail")
        finished = [START - timedelta(minutes=m) for m in (40, 30, 20, 10)]
        for i, (state, at) in enumerate(
            zip(("succeeded", "failed", "failed", "failed"), finished, strict=True)
        ):
            session.add(
                Run(
                    organizationId=tenant.org_id,
                    newsId=search.id,
                    scheduledFor=at - timedelta(seconds=i),
                    state=state,
                    finishedAt=at,
                    error={"error": "query broke"} if state == "failed" else None,
                )
            )
        news_id = search.id

    assert tenant.check() == [tenant.org_id]
    assert tenant.notify().sent
    assert tenant.check() == []
    [alert] = tenant.posts("team")
    [change] = alert["alert"]["changes"]
    assert (change["subject"], change["id"], change["name"]) == ("news", news_id, "Rail")
    assert change["error"] == "query broke"


def test_the_scheduler_checks_when_due_and_sends_one_message_per_organization(
    tenant: Tenant,
) -> None:
    tenant.webhook("team")
    tenant.searches_following(50, "https://feeds.example/dead.xml", **FAILING)
    sent: list[list[str]] = []
    scheduler = Scheduler(
        tenant.engine,
        lambda _ids: None,
        health=POLICY_DEFAULTS,
        health_every=timedelta(hours=1),
        enqueue_health_alerts=sent.append,
    )

    assert scheduler.check_health_if_due() == 1
    assert scheduler.check_health_if_due() == 0  # not due again for an hour
    assert sent == [[tenant.org_id]]


def test_another_organizations_failures_are_not_told_to_this_one(
    tenant: Tenant, pg_engine: Engine
) -> None:
    tenant.webhook("team")
    with unit_of_work(pg_engine) as session:
        other = factories.org(session, "other")
        search = factories.news(session, other)
        source = Source(url="https://feeds.example/theirs.xml", **FAILING)
        session.add(source)
        session.flush()
        session.add(NewsSource(organizationId=other.id, newsId=search.id, sourceId=source.id))
        other_id = other.id

    assert tenant.check() == [other_id]
    assert tenant.notify().skipped == "nothing to tell"
    assert tenant.receiver.requests == []


def test_the_scheduler_and_the_alert_actor_send_a_signed_alert_once(
    tenant: Tenant, tmp_path: Path
) -> None:
    tenant.webhook("team")
    tenant.searches_following(50, "https://feeds.example/dead.xml", **FAILING)
    settings = Settings(data_dir=tmp_path, fetch_allowlist="127.0.0.1", encryption_keys=tenant.key)
    broker = build_pipeline(settings, tenant.engine, broker=build_broker(settings))
    scheduler = Scheduler(
        tenant.engine,
        lambda _ids: None,
        health=POLICY_DEFAULTS,
        health_every=timedelta(0),
        enqueue_health_alerts=partial(enqueue_health_alerts, broker),
    )
    worker = dramatiq.Worker(broker, worker_threads=2)
    worker.start()
    try:
        assert scheduler.check_health_if_due() == 1
        broker.join(DELIVER_QUEUE)
        worker.join()
        assert scheduler.check_health_if_due() == 0  # told: nothing left to send
        enqueue_health_alerts(broker, [tenant.org_id])  # a stray duplicate sends nothing
        broker.join(DELIVER_QUEUE)
        worker.join()
    finally:
        worker.stop()

    [request] = [r for r in tenant.receiver.requests if r.path == "/hook/team"]
    Webhook(SECRET).verify(request.body, request.headers)
    assert request.headers["webhook-id"].startswith("health_")
    assert json.loads(request.body)["alert"]["changes"][0]["subject"] == "source"


def test_a_broken_channel_deleted_is_told_as_no_longer_monitored_not_as_working(
    tenant: Tenant,
) -> None:
    broken = tenant.webhook("team", status="broken")
    tenant.webhook("ops")
    tenant.check()
    assert tenant.notify().sent

    with unit_of_work(tenant.engine) as session:
        session.execute(delete(Channel).where(Channel.id == broken))
    tenant.now += timedelta(minutes=1)
    tenant.check()
    assert tenant.notify().sent

    [change] = tenant.posts("ops")[1]["alert"]["changes"]
    assert (change["id"], change["state"]) == (broken, "ok")
    assert change["error"].startswith("no longer monitored")
    assert "no longer monitored" in tenant.posts("ops")[1]["alert"]["title"]


def test_settled_rows_are_deleted_after_a_month(tenant: Tenant) -> None:
    tenant.webhook("team")
    source_id = tenant.searches_following(1, "https://feeds.example/dead.xml", **FAILING)
    tenant.check()
    tenant.notify()
    tenant.set_source(source_id, **RECOVERED)
    tenant.now += timedelta(minutes=1)
    tenant.check()
    tenant.notify()
    with unit_of_work(tenant.engine) as session:
        row = session.scalars(select(HealthAlert)).one()
        assert (row.state, row.notifiedState) == ("ok", "ok")

    tenant.now += timedelta(days=31)
    tenant.check()

    with unit_of_work(tenant.engine) as session:
        assert session.scalars(select(HealthAlert)).all() == []

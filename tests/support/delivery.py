"""Delivery test world: an organization, a search, channels sealed with a keyring,
stories, planning and delivering on an injected clock (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import random
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import Channel, Delivery, News, NewsChannel
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.deliveries import DeliverResult, SendContext, deliver
from core.delivery.digests import plan_and_create
from core.fetch import GuardPolicy, build_client
from core.ids import new_id
from core.secrets import Keyring, generate_key_string, parse_keys
from tests.support import factories
from workers.broker import DELIVER_QUEUE, build_broker

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
POLICY = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=2.0, read_timeout_s=1.0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def link_webhook(
    session: Session, org_id: str, news_id: str, url: str, secret: str, key: str
) -> Channel:
    """A webhook channel of ``org_id`` posting to ``url`` (signed with ``secret``, sealed
    with the encryption ``key``), linked to search ``news_id``."""
    channel = Channel(organizationId=org_id, type="webhook", name="hook", config={})
    session.add(channel)
    session.flush()
    valid = ch.validate_config("webhook", {"url": url, "secret": secret})
    channel.config = ch.seal_config("webhook", valid, parse_keys(key), org_id, channel.id)
    session.add(NewsChannel(organizationId=org_id, newsId=news_id, channelId=channel.id))
    return channel


@dataclass
class World:
    engine: Engine
    keyring: Keyring
    org_id: str
    news_id: str
    clock: Clock
    ctx: SendContext
    channel_ids: list[str] = field(default_factory=list)

    def channel(self, type_: str, config: dict[str, Any]) -> str:
        """A channel of the search with a validated config."""
        return self.stored_channel(type_, ch.validate_config(type_, config))

    def stored_channel(self, type_: str, config: ch.ChannelConfig) -> str:
        """A channel of the search with ``config`` as given (``model_construct`` builds one
        that today's validation refuses, as a row stored by an older version)."""
        channel_id = new_id()
        with unit_of_work(self.engine) as session:
            stored = ch.seal_config(type_, config, self.keyring, self.org_id, channel_id)
            session.add(
                Channel(id=channel_id, organizationId=self.org_id, type=type_, config=stored)
            )
            session.flush()
            session.add(
                NewsChannel(organizationId=self.org_id, newsId=self.news_id, channelId=channel_id)
            )
        self.channel_ids.append(channel_id)
        return channel_id

    def stories(self, n: int = 2, score: float = 0.8) -> list[str]:
        with unit_of_work(self.engine) as session:
            search = session.get(News, self.news_id)
            assert search is not None
            return [
                factories.story(
                    session,
                    search,
                    f"https://news.example/{new_id()}",
                    title=f"Story <{i}> & co",
                    relevanceScore=score,
                    sourceName="news.example",
                    foundAt=self.clock(),
                ).id
                for i in range(n)
            ]

    def plan(self) -> list[str]:
        with unit_of_work(self.engine) as session:
            outcome = plan_and_create(session, self.org_id, self.news_id, now=self.clock())
        return list(outcome.delivery_ids)

    def deliver(self, delivery_id: str, **kwargs: Any) -> DeliverResult:
        return deliver(
            self.engine,
            delivery_id,
            kwargs.pop("ctx", self.ctx),
            clock=self.clock,
            rng=random.Random(7),
            **kwargs,
        )

    def row(self, delivery_id: str) -> Delivery:
        with unit_of_work(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            session.expunge(row)
            return row

    def channel_row(self, channel_id: str) -> Channel:
        with unit_of_work(self.engine) as session:
            row = session.get(Channel, channel_id)
            assert row is not None
            session.expunge(row)
            return row


@contextmanager
def new_world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    """A world of its own on ``engine`` (its guarded client closed afterwards)."""
    keyring = Keyring([generate_key_string()])
    with unit_of_work(engine) as session:
        organization = factories.org(session)
        search = factories.news(session, organization)
        org_id, news_id = organization.id, search.id
    client = build_client(POLICY)
    # file channels write below <tmp>/digests/<organizationId>/
    ctx = SendContext(keyring=keyring, client=client, policy=POLICY, file_root=tmp_path / "digests")
    yield World(engine, keyring, org_id, news_id, Clock(START), ctx)
    client.close()


@pytest.fixture(name="world")
def world_fixture(db_engine: Engine, tmp_path: Path) -> Iterator[World]:
    with new_world(db_engine, tmp_path) as world:
        yield world


@pytest.fixture(name="pg_world")
def pg_world_fixture(pg_engine: Engine, tmp_path: Path) -> Iterator[World]:
    """A world on PostgreSQL only (what only PostgreSQL does: a batch's claims)."""
    with new_world(pg_engine, tmp_path) as world:
        yield world


def drain_deliveries(broker: dramatiq.Broker, threads: int = 1, *, failing: bool = False) -> None:
    """Run a dramatiq worker on ``broker`` until its deliver queue is empty and idle
    (``failing``: a message is expected to fail; the in-process broker raises its
    error otherwise)."""
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    try:
        if failing:
            broker.join(DELIVER_QUEUE, fail_fast=False)  # type: ignore[call-arg]
        else:
            broker.join(DELIVER_QUEUE)
        worker.join()
    finally:
        worker.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SMTPHandler:
    """Accepts mail, or answers RCPT with a scripted reply."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.recipients: list[list[str]] = []  # the envelope's, per message
        self.rcpt_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@contextmanager
def smtp_server() -> Iterator[tuple[SMTPHandler, int]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, for as long as needed."""
    handler = SMTPHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[tuple[SMTPHandler, int]]:
    """An aiosmtpd server on 127.0.0.1 (its handler, its port)."""
    with smtp_server() as server:
        yield server


@contextmanager
def redis_broker(
    pg_engine: Engine, redis_url: str, prefix: str, **options: Any
) -> Iterator[dramatiq.Broker]:
    """The production broker on the test's Redis, under a namespace of its own (``prefix``
    and a random suffix), for a pipeline on ``pg_engine``; ``options`` go to
    :func:`~workers.broker.build_broker` (backoffs)."""
    settings = Settings(
        database_url=pg_engine.url.render_as_string(hide_password=False),
        broker_url=redis_url,
        encryption_keys="A" * 43,
    )
    built = build_broker(settings, namespace=f"{prefix}-{secrets.token_hex(4)}", **options)
    try:
        yield built
    finally:
        built.close()

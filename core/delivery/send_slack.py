"""Slack incoming webhooks through the guarded client.

Slack answers 200 ``ok``; 403 ``invalid_token``/``action_prohibited`` and 404
``no_service``/``channel_not_found`` mean the webhook is revoked or its channel gone:
the channel is marked broken instead of retried forever. A digest longer than one
message is posted as several in order; should a later one fail, a retry posts the
digest again from the first (Slack has no idempotency key), which the error notes.
"""

from __future__ import annotations

import json
from datetime import datetime

from core.delivery.channels import SlackConfig
from core.delivery.outcome import Outcome, excerpt, from_fetch_error, from_http_status
from core.delivery.presenting import Show
from core.delivery.render_slack import render_slack
from core.errors import FetchError
from core.fetch import GuardedClient

#: Statuses with which Slack says the webhook itself is no longer valid.
BROKEN_STATUSES = frozenset({403, 404})
#: Slack error bodies meaning the same on any status.
BROKEN_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "no_service_id",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "team_disabled",
        "no_team",
    }
)


def send_slack(
    config: SlackConfig, show: Show, *, client: GuardedClient, now: datetime, buttons: bool = False
) -> Outcome:
    """Post every message of the digest (feedback as ``buttons`` or links); the first
    failure ends the attempt."""
    messages = render_slack(show(), buttons=buttons)
    last = Outcome.sent()
    for number, message in enumerate(messages, start=1):
        body = json.dumps(message, ensure_ascii=False).encode("utf-8")
        try:
            result = client.fetch(
                config.url,
                method="POST",
                headers={"content-type": "application/json; charset=utf-8"},
                content=body,
                follow_redirects=False,
            )
        except FetchError as exc:
            return from_fetch_error(exc)
        text = excerpt(result.body).strip()
        if result.status in BROKEN_STATUSES or text in BROKEN_ERRORS:
            return Outcome.failed(
                f"Slack webhook refused ({result.status} {text})",
                broken=True,
                status=result.status,
                response=text,
            )
        last = from_http_status(result.status, result.headers, result.body, now)
        if last.kind != "sent" and number > 1:
            return Outcome.failed(
                f"{last.error} on message {number} of {len(messages)} "
                "(earlier messages were posted)",
                permanent=last.permanent,
                retry_after=last.retry_after,
                status=last.status,
                response=last.response,
            )
        if last.kind != "sent":
            return last
    return last

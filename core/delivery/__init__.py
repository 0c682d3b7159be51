"""Delivery: plan digests from a search's held stories, render them per medium, send
them to the organization's channels and record every attempt.

One module per step (see each docstring): ``wait_settings`` (the validated
``news.waitSettings``), ``planning`` (pure: which digests are due now), ``digests``
(freeze a digest and create its delivery rows), ``channels`` (config per type, secrets
sealed at rest), ``render_*`` (one renderer per medium from :mod:`core.delivery.model`),
``send_*`` (one sender per channel type, all returning a :class:`~core.delivery.outcome.
Outcome`) and ``deliveries`` (claim, send, record, retry, replay, test send).
"""

"""Creating and finding organizations (tenants)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Organization
from core.errors import Conflict, NotFound, ValidationError
from core.ids import new_id

#: Slugs appear in URLs and CLI arguments: lower-case letters, digits and dashes.
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
#: Longest organization name accepted.
MAX_NAME_LENGTH = 255


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")


def create_organization(session: Session, *, name: str, slug: str | None = None) -> Organization:
    """Create a tenant; the slug defaults to one derived from the name (``org-<id>`` for a
    name with no Latin letter or digit) and must be free (:class:`Conflict`)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    if slug is None:  # derived from the name; a name without Latin letters or digits gets one
        slug = slugify(name) or f"org-{new_id().lower()}"
    if not SLUG_PATTERN.match(slug):
        raise ValidationError("use 1-64 lower-case letters, digits and inner dashes", field="slug")
    if session.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"{slug!r} is already taken", field="slug")
    organization = Organization(name=name, slug=slug)
    session.add(organization)
    session.flush()
    return organization


def organization_by_slug(session: Session, slug: str) -> Organization:
    organization = session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        raise NotFound(f"no organization with slug {slug!r}")
    return organization

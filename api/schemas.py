"""Base classes of request and response bodies (strict input, camelCase like the schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """A request body: unknown fields (``organizationId`` included) are a 422."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response body read from ORM rows."""

    model_config = ConfigDict(from_attributes=True)

"""Base classes of request and response bodies (strict input, camelCase like the schema),
and the rules every input of the API follows, each answered with a 422 naming the field:

- no string holds a NUL character (PostgreSQL text cannot store one): bodies at any depth,
  path and query parameters and headers (:func:`refuse_bad_parameters`);
- JSON types are taken as the OpenAPI document states them (``false`` is not an integer,
  ``0`` is not a boolean, a number is not a date-time);
- date-times are RFC 3339 with an offset (:data:`UtcDateTime`);
- a PATCH body leaves out what it does not change, and ``null`` is refused on every field
  (:class:`PatchBody`).

:func:`openapi_input_rules` writes these rules into the document, so that what the
document accepts is what the API accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated, Any

from fastapi import Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from core.errors import ValidationError
from core.tenancy.members import MAX_EMAIL_LENGTH

#: The one character no stored string may hold.
NUL = "\x00"
#: What a refused NUL character is told.
NUL_MESSAGE = "must not contain a NUL character"
#: Why a query parameter given more than once is refused.
REPEATED_MESSAGE = "given more than once; every query parameter takes one value"
#: Pattern of every string of the OpenAPI document: no NUL character.
NO_NUL_PATTERN = "^[^\\u0000]*$"
#: ``ctx`` key of a pydantic error that names a place inside the field (``sources.0.url``).
INNER_LOCATION = "inner"


#: The characters ``str.strip()`` removes (what makes a name blank), spelled out so that
#: every regular-expression engine reading the OpenAPI document agrees on them.
BLANK_CHARACTERS = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
#: Pattern of a name that must not be blank (and holds no NUL).
NON_BLANK_PATTERN = f"^[^\\u0000]*[^{BLANK_CHARACTERS}\\u0000][^\\u0000]*$"
#: ``json_schema_extra`` of a name that must not be blank (the API strips names).
NON_BLANK: dict[str, Any] = {"pattern": NON_BLANK_PATTERN}


#: An email address (an invitee, an organization's owner).
EmailAddress = Annotated[
    str,
    Field(min_length=3, max_length=MAX_EMAIL_LENGTH, json_schema_extra={"format": "email-address"}),
]


def _nul_locations(value: object, where: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, str):
        if NUL in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            label = str(key).replace(NUL, "\\0")
            if NUL in str(key):
                yield (*where, label)
            yield from _nul_locations(item, (*where, label))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _nul_locations(item, (*where, str(index)))


def nul_location(value: object) -> str | None:
    """Where in a JSON value the first NUL character is (``""``: the value itself), or None."""
    found = next(_nul_locations(value), None)
    return None if found is None else ".".join(found)


def integral_numbers_as_integers(value: object) -> object:
    """``value`` with every integral float made an int: JSON Schema counts ``15.0`` as an
    integer, strict validation would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_numbers_as_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_numbers_as_integers(item) for item in value]
    return value


class StrictBody(BaseModel):
    """A request body: unknown fields (``organizationId`` included) are a 422, values are
    taken strictly by their JSON type, and no string at any depth holds a NUL."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _json_values(cls, data: object) -> object:
        inner = nul_location(data)
        if inner is not None:
            raise PydanticCustomError("nul_character", NUL_MESSAGE, {INNER_LOCATION: inner})
        return integral_numbers_as_integers(data)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` of an optional field without ``null`` among its types or as default."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        schema = {k: v for k, v in schema.items() if k != "anyOf"}
        schema.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    return schema


class PatchBody(StrictBody):
    """A partial update: a field left out keeps its value; ``null`` is refused on every
    field (none may be emptied), so ``"name": null`` is a 422 naming ``name`` instead of
    a search renamed "None" or deactivated."""

    @model_validator(mode="before")
    @classmethod
    def _no_null(cls, data: object) -> object:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise PydanticCustomError(
                        "null_refused",
                        "must not be null (leave the field out to keep its value)",
                        {INNER_LOCATION: str(name)},
                    )
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        properties = schema.get("properties", {})
        for name, field_schema in properties.items():
            properties[name] = _without_null(field_schema)
        return schema


class Out(BaseModel):
    """A response body read from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


def document(model: type[BaseModel]) -> PlainValidator:
    """Validate a JSON document (``searchQuery``, ``relevanceSettings``, ...) against
    ``model`` strictly, keeping the document as sent; the OpenAPI document shows ``model``.
    Core validates the stored document again, leniently, whenever it reads it."""

    def check(value: object) -> object:
        model.model_validate(value, strict=True)
        return value

    return PlainValidator(check, json_schema_input_type=model)


#: RFC 3339 ``date-time``: date, ``T``, time with optional fraction, ``Z`` or an offset.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
#: Years a date-time may have: 2 to 9998, so that every offset converts to UTC.
DATE_TIME_YEARS = r"^(000[2-9]|00[1-9]\d|0[1-9]\d\d|[1-8]\d{3}|9[0-8]\d\d|99[0-8]\d)-"
_YEARS = re.compile(DATE_TIME_YEARS, re.ASCII)


def _utc_datetime(value: object) -> datetime:
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise PydanticCustomError(
            "date_time", "must be an RFC 3339 date-time with an offset (2026-01-31T09:00:00Z)"
        )
    if not _YEARS.match(value):
        raise PydanticCustomError("date_time_range", "must lie in the years 2 to 9998")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise PydanticCustomError("date_time", "is not a valid date and time") from None
    return parsed.astimezone(UTC)


#: A date-time input: an RFC 3339 string with an offset (no number, no naive time), in
#: years 2 to 9998 (``0001-01-01T00:00:00+14:00`` would leave Python's range in UTC),
#: given to the route in UTC.
UtcDateTime = Annotated[
    datetime,
    PlainValidator(_utc_datetime),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATE_TIME_YEARS}),
]


def refuse_bad_parameters(request: Request) -> None:
    """Refuse a NUL character in a path or query parameter or a header, and a query
    parameter given more than once (every one is a single value; taking the last would
    accept what the document refuses): 422 naming it. Bodies are checked by
    :class:`StrictBody`. Runs before every route's own parameters."""
    parameters = chain(
        request.path_params.items(), request.query_params.multi_items(), request.headers.items()
    )
    for name, value in parameters:
        if NUL in name or NUL in str(value):
            raise ValidationError(NUL_MESSAGE, field=name.replace(NUL, "\\0"))
    names = [name for name, _ in request.query_params.multi_items()]
    for name in names:
        if names.count(name) > 1:
            raise ValidationError(REPEATED_MESSAGE, field=name)


#: The string formats JSON Schema defines; any other ``format`` in the document is one of
#: this API's own (``news-query``, ``cron``, ``time-zone``...), described where it is used.
JSON_SCHEMA_FORMATS = frozenset(
    {
        "date-time", "date", "time", "duration", "email", "idn-email", "hostname",
        "idn-hostname", "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference",
        "uuid", "uri-template", "json-pointer", "relative-json-pointer", "regex",
    }
)  # fmt: skip


def _own_format_lengths(node: dict[str, Any]) -> None:
    """Move the length limits of a string in one of this API's own formats into its
    description: a value of the format is what the format says, limits included, and a
    generator of the format cannot be steered to a length."""
    limits = [node.pop(key, None) for key in ("minLength", "maxLength")]
    if limits[1] is not None:
        note = f"at most {limits[1]} characters"
        node["description"] = f"{node['description']} ({note})" if "description" in node else note


def openapi_input_rules(node: object) -> None:
    """Write the input rules into an OpenAPI document: every string schema gets the no-NUL
    pattern unless a pattern, an enum, a constant or a format already leaves NUL out."""
    if isinstance(node, dict):
        if node.get("type") == "string":
            own_format = node.get("format") not in {None, *JSON_SCHEMA_FORMATS}
            if own_format:
                _own_format_lengths(node)
            if not {"pattern", "enum", "const", "format"} & set(node):
                node["pattern"] = NO_NUL_PATTERN
        for value in node.values():
            openapi_input_rules(value)
    elif isinstance(node, list):
        for item in node:
            openapi_input_rules(item)

"""UPDATE statements built once per shape and run with bound parameters.

SQLAlchemy caches the compiled SQL of a statement, but building the statement (its
expression tree, and an ORM ``update(Model)``'s session synchronization) still costs
Python on every call: more than the database round trip itself for the short
per-item updates of runs and deliveries (measured with ``bench/scheduler.py`` and
``bench/delivery.py``). Callers keep one statement per *shape* (which columns are set,
and which of them to NULL) in an ``lru_cache``d builder, and pass the values as
parameters named by :func:`value_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, bindparam, null
from sqlalchemy.sql.elements import ColumnElement

#: Prefix of the parameters that carry SET values (keeps them apart from WHERE ones).
VALUE_PREFIX = "v_"

#: A statement's SET shape: each column's name and whether it is set to NULL.
Shape = tuple[tuple[str, bool], ...]


def shape_of(values: Mapping[str, Any]) -> Shape:
    """The shape of ``values``: hashable, so a builder can be cached on it."""
    return tuple(sorted((name, value is None) for name, value in values.items()))


def set_clause(
    table: Table, shape: Shape, prefix: str = VALUE_PREFIX
) -> dict[str, ColumnElement[Any]]:
    """``.values()`` of ``shape``: a typed bound parameter per column, SQL NULL for None.

    None must be SQL NULL, as a literal ``None`` in ``.values()`` is: a JSON column's
    bound None would store the JSON ``null`` instead. Statements that set columns of
    several tables give each its own ``prefix``.
    """
    return {
        name: null() if is_null else bindparam(prefix + name, type_=table.c[name].type)
        for name, is_null in shape
    }


def value_params(values: Mapping[str, Any], prefix: str = VALUE_PREFIX) -> dict[str, Any]:
    """The parameters of :func:`set_clause`'s statement for ``values``."""
    return {prefix + name: value for name, value in values.items() if value is not None}

"""Each table's column types as ``schema.sql`` declares them, read from its CREATE TABLE statements.

clickhouse-connect asks the server ``DESCRIBE TABLE`` before every insert unless it is told the
column types: a query per insert (~3 ms of chdb's CPU each, a round trip to a server), for types
that are fixed once the schema is applied. ``Connection.insert`` hands the driver these instead
(tests/test_schema_types.py holds them equal to what ClickHouse describes). Driver-free and pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS [\w.]*?(\w+)\s*\((.*)\)\s*ENGINE", re.S)
_COMMENT = re.compile(r"--[^\n]*")
_CLAUSE = re.compile(r"\s+(?:DEFAULT|MATERIALIZED|ALIAS|EPHEMERAL|CODEC|TTL|COMMENT)\b")


def declared_types(statements: Iterable[str]) -> dict[str, dict[str, str]]:
    """Table name → {column: type} for every CREATE TABLE among ``statements``."""
    tables: dict[str, dict[str, str]] = {}
    for statement in statements:
        found = _CREATE.search(statement)
        if found is None:
            continue
        table, body = found.groups()
        columns: dict[str, str] = {}
        for definition in _top_level(_COMMENT.sub("", body)):
            name, rest = (definition.split(None, 1) + [""])[:2]
            columns[name.strip("`")] = _CLAUSE.split(rest.strip(), maxsplit=1)[0].strip()
        tables[table] = columns
    return tables


def insert_types(
    tables: Mapping[str, Mapping[str, str]], table: str, columns: Iterable[str]
) -> list[str] | None:
    """The types of ``columns`` of ``table`` in order, or None when any is not declared (the
    driver then asks the server, as it would anyway)."""
    declared = tables.get(table, {})
    names = list(columns)
    if not all(name in declared for name in names):
        return None
    return [declared[name] for name in names]


def _top_level(body: str) -> list[str]:
    """``body`` cut at the commas outside parentheses (a type such as ``DateTime64(3, 'UTC')``
    keeps its own)."""
    parts: list[str] = []
    depth = start = 0
    for i, char in enumerate(body):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [part for part in parts if part.strip()]

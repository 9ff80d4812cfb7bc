"""The results tables as code, so every engine (des, fast, lab) writes the same columns.

The meaning of each table is in docs/scenario.md ("Results: one folder per run").
Each schema is the single source of truth: the writer converts through it and the
reader converts back through it, so a frame read from disk has exactly the dtypes
of a frame validated before writing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.replication import OUTCOMES

__all__ = [
    "CLIENTS_COLUMNS",
    "CLIENTS_SCHEMA",
    "OUTCOME_COLUMNS",
    "REPLICATIONS_COLUMNS",
    "ADDED",
    "OPTIONAL_TABLES",
    "REPLICATIONS_SCHEMA",
    "SCHEMA_VERSION",
    "TABLES",
    "TARGETS_SCHEMA",
    "affected_clients",
    "TIMELINE_COLUMNS",
    "TIMELINE_SCHEMA",
    "UNBOUNDED",
    "validate_frame",
]

# How summary.json and a baseline store (and the tables show) a recovery percentile
# whose rank falls among clients that had not recovered when the run ended: it is
# beyond the run, and JSON has no infinity (null already means "undefined").
UNBOUNDED = "> run"

# Bumped when a column changes meaning or type, so old folders can be told apart.
# 2: clients lists every client, with switched_at and last_previous_at;
# replications.changed_at; targets.parquet.
SCHEMA_VERSION = "2"

# Outcomes of a request, in the order of the engine contract; the timeline counts
# requests by their final outcome under these names.
OUTCOME_COLUMNS: tuple[str, ...] = OUTCOMES


def _schema(table: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={"table": table, "schema_version": SCHEMA_VERSION})


def _req(name: str, type_: pa.DataType) -> pa.Field:
    # Only float columns may hold NaN (it means "not recovered" / "no data");
    # a missing count or name is always an engine bug, so nulls are refused.
    return pa.field(name, type_, nullable=False)


CLIENTS_SCHEMA = _schema(
    "clients",
    [
        _req("strategy", pa.string()),
        _req("replication", pa.int32()),
        _req("client", pa.int64()),
        _req("cohort", pa.string()),
        _req("resolver_group", pa.string()),
        _req("recovery_s", pa.float64()),  # NaN: not recovered by the end of the run
        _req("failed", pa.int64()),
        _req("fault_at", pa.float64()),  # NaN: not affected
        # After the most recent DNS change or address move (scenario seconds);
        # NaN: no request reached the current target / none went to the previous.
        _req("switched_at", pa.float64()),
        _req("last_previous_at", pa.float64()),
    ],
)

TIMELINE_SCHEMA = _schema(
    "timeline",
    [
        _req("strategy", pa.string()),
        _req("replication", pa.int32()),
        _req("t", pa.int64()),  # whole second since the start of the simulation
        _req("requests", pa.int64()),
        *(_req(name, pa.int64()) for name in OUTCOME_COLUMNS),
        _req("on_old_target", pa.int64()),
        _req("dns_queries", pa.int64()),
    ],
)

REPLICATIONS_SCHEMA = _schema(
    "replications",
    [
        _req("strategy", pa.string()),
        _req("replication", pa.int32()),
        _req("requests", pa.int64()),
        _req("failed", pa.int64()),
        _req("clients_affected", pa.int64()),
        _req("stragglers_5m", pa.float64()),
        _req("latency_ms_p50", pa.float64()),
        _req("latency_ms_p99", pa.float64()),
        _req("dns_queries", pa.int64()),
        _req("dropped", pa.int64()),
        _req("changed_at", pa.float64()),  # when the DNS change or address move was made; NaN: none
    ],
)

# Where first attempts went, per second and cohort (docs/scenario.md, "targets.parquet").
TARGETS_SCHEMA = _schema(
    "targets",
    [
        _req("strategy", pa.string()),
        _req("replication", pa.int32()),
        _req("t", pa.int64()),
        _req("cohort", pa.string()),
        _req("to_previous", pa.int64()),
        _req("to_current", pa.int64()),
        _req("rescued", pa.int64()),
    ],
)

CLIENTS_COLUMNS: tuple[str, ...] = tuple(CLIENTS_SCHEMA.names)
TIMELINE_COLUMNS: tuple[str, ...] = tuple(TIMELINE_SCHEMA.names)
REPLICATIONS_COLUMNS: tuple[str, ...] = tuple(REPLICATIONS_SCHEMA.names)

# File stem -> schema, for the writer and the reader.
TABLES: dict[str, pa.Schema] = {
    "clients": CLIENTS_SCHEMA,
    "timeline": TIMELINE_SCHEMA,
    "replications": REPLICATIONS_SCHEMA,
    "targets": TARGETS_SCHEMA,
}

# What a folder written before schema version 2 lacks: the reader fills these
# columns with NaN and these tables with no rows, and says so (RunResults.lacks).
ADDED: dict[str, tuple[str, ...]] = {
    "clients": ("switched_at", "last_previous_at"),
    "replications": ("changed_at",),
}
OPTIONAL_TABLES: tuple[str, ...] = ("targets",)


def _table_name(schema: pa.Schema) -> str:
    meta = schema.metadata or {}
    return meta.get(b"table", b"table").decode()


def _column_array(series: pd.Series, field: pa.Field, table: str) -> pa.Array:
    floating = pa.types.is_floating(field.type)
    values = series.to_numpy()
    try:
        # from_pandas=False keeps NaN as NaN in float columns (it is data there);
        # elsewhere None/NaN become nulls so the null check below can catch them.
        array = pa.array(values, type=field.type, from_pandas=not floating)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"{table}: column {field.name!r} cannot be converted to {field.type}: {exc}"
        ) from exc
    if not field.nullable and array.null_count:
        raise ValueError(
            f"{table}: column {field.name!r} has {array.null_count} missing value(s); "
            f"{field.type} columns must be complete"
        )
    return array


def to_table(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert ``df`` to an Arrow table with exactly ``schema`` (checked, cast)."""
    table = _table_name(schema)
    columns = list(df.columns)
    expected = list(schema.names)
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise ValueError(f"{table}: {'; '.join(parts)}; expected exactly {expected}")
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(f"{table}: duplicate column(s) {dupes}")
    arrays = [_column_array(df[field.name], field, table) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def from_table(table: pa.Table) -> pd.DataFrame:
    """The canonical pandas form of a schema-conforming Arrow table."""
    df = table.to_pandas()
    # An empty float column can come back as object; pin the numeric dtypes.
    for field in table.schema:
        if pa.types.is_floating(field.type):
            df[field.name] = df[field.name].astype(np.float64)
        elif pa.types.is_integer(field.type):
            df[field.name] = df[field.name].astype(field.type.to_pandas_dtype())
    return df


def validate_frame(df: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return a copy with its columns in schema
    order and cast to the schema's types (the same dtypes the reader returns).

    Raises ValueError naming missing or unexpected columns, a column whose values
    cannot be cast (e.g. 1.5 in an integer column), or nulls in a column that must
    be complete. The index is dropped: tables are plain rows.
    """
    return from_table(to_table(df, schema))


def affected_clients(clients: pd.DataFrame) -> pd.DataFrame:
    """The rows of a CLIENTS table for clients a fault affected (a failed request
    after it): recovery is theirs. The table lists every client since schema 2."""
    return clients[clients["failed"] > 0]

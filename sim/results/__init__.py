"""The results every engine writes: one folder per run (docs/scenario.md, "Results").

Write with :func:`write_run` (atomic: no half-written folder or table is ever
visible under its final name), read with :func:`open_run`.
"""

from sim.results.manifest import git_commit, manifest, scenario_sha256
from sim.results.reader import RunResults, open_run, summary_frame
from sim.results.schema import (
    CLIENTS_COLUMNS,
    CLIENTS_SCHEMA,
    OUTCOME_COLUMNS,
    REPLICATIONS_COLUMNS,
    REPLICATIONS_SCHEMA,
    SCHEMA_VERSION,
    TABLES,
    TIMELINE_COLUMNS,
    TIMELINE_SCHEMA,
    validate_frame,
)
from sim.results.writer import (
    FILES,
    to_jsonable,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_run,
)

__all__ = [
    "CLIENTS_COLUMNS",
    "CLIENTS_SCHEMA",
    "FILES",
    "OUTCOME_COLUMNS",
    "REPLICATIONS_COLUMNS",
    "REPLICATIONS_SCHEMA",
    "SCHEMA_VERSION",
    "TABLES",
    "TIMELINE_COLUMNS",
    "TIMELINE_SCHEMA",
    "RunResults",
    "git_commit",
    "manifest",
    "open_run",
    "scenario_sha256",
    "summary_frame",
    "to_jsonable",
    "validate_frame",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_parquet_atomic",
    "write_run",
]

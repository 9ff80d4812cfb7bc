"""Atomic writes of results files and of a whole run folder.

A reader (a person, CI, ``failover-sim compare``) must never see half a table: every
file is written to a hidden temp file in the same directory, fsynced, then renamed
over the final name (a rename within one filesystem is atomic on POSIX). A run
folder is built the same way one level up: a hidden sibling directory renamed into
place once everything in it is complete. A process killed at any point leaves at
worst a hidden ``.*.tmp`` file or ``.*.partial-PID`` directory, never a final name.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.results.schema import (
    CLIENTS_SCHEMA,
    REPLICATIONS_SCHEMA,
    TARGETS_SCHEMA,
    TIMELINE_SCHEMA,
    to_table,
)

__all__ = [
    "FILES",
    "to_jsonable",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_parquet_atomic",
    "write_run",
]

# The files of a run folder (figures go under figures/<name>.png).
FILES: dict[str, str] = {
    "summary": "summary.json",
    "clients": "clients.parquet",
    "timeline": "timeline.parquet",
    "replications": "replications.parquet",
    "targets": "targets.parquet",
    "manifest": "manifest.json",
}

# Test seam: called with the temp path after each chunk reaches the temp file, so a
# test can stop a real writer half-way and SIGKILL it. None in normal use.
_after_chunk: Callable[[Path], None] | None = None

_BYTES_CHUNK = 1 << 20
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fsync_dir(directory: Path) -> None:
    # The rename itself lives in the directory; without this a power cut can lose it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _chunk_written(f: IO[bytes], tmp: Path) -> None:
    if _after_chunk is not None:
        f.flush()
        _after_chunk(tmp)


def _atomic_write(path: str | os.PathLike[str], body: Callable[[IO[bytes], Path], None]) -> Path:
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600 whatever the umask; results are shared (CI artefacts, a
        # team's folder), so give them the mode open(2) would: 0666 less the umask.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            body(f, tmp)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        # BaseException too: Ctrl-C mid-write must not leave litter either.
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)
    return final


def _umask() -> int:
    """The process's umask, read without changing it (Linux 4.7+ reports it in /proc);
    elsewhere set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy/pandas scalars made plain and NaN/inf made ``None``.

    NaN is not JSON (RFC 8259); strict parsers (jq, browsers) reject it, so an
    undefined value (a CI from one replication, a percentile of nothing) is null.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset | np.ndarray | pd.Series):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as strict, indented UTF-8 JSON (NaN -> null), atomically."""
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False, allow_nan=False)
    # Encode before touching the disk so a type error leaves nothing behind at all.
    chunks: Iterator[str] = encoder.iterencode(to_jsonable(obj))
    pieces = list(chunks)

    def body(f: IO[bytes], tmp: Path) -> None:
        for piece in pieces:
            f.write(piece.encode())
            _chunk_written(f, tmp)
        f.write(b"\n")

    return _atomic_write(path, body)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    view = memoryview(data)

    def body(f: IO[bytes], tmp: Path) -> None:
        for start in range(0, len(view), _BYTES_CHUNK):
            f.write(view[start : start + _BYTES_CHUNK])
            _chunk_written(f, tmp)

    return _atomic_write(path, body)


def _write_table_atomic(path: str | os.PathLike[str], table: pa.Table, chunk_rows: int) -> Path:
    def body(f: IO[bytes], tmp: Path) -> None:
        with pq.ParquetWriter(f, table.schema, compression="zstd") as writer:
            if table.num_rows == 0:
                writer.write_table(table)
            for start in range(0, table.num_rows, chunk_rows):
                writer.write_table(table.slice(start, chunk_rows))
                _chunk_written(f, tmp)

    return _atomic_write(path, body)


def write_parquet_atomic(
    path: str | os.PathLike[str],
    df: pd.DataFrame,
    schema: pa.Schema,
    *,
    chunk_rows: int = 65_536,
) -> Path:
    """Validate ``df`` against ``schema`` and write it as Parquet, atomically.

    Rows go out in row groups of ``chunk_rows`` so a big table streams instead of
    being serialised twice in memory. Raises ValueError (before any file is
    created) when ``df`` does not match ``schema``.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return _write_table_atomic(path, to_table(df, schema), chunk_rows)


def _check_out_dir(final: Path) -> None:
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(
            f"results folder {final} already exists and is not empty; "
            "choose another --out or remove it first (runs never overwrite results)"
        )


def _figure_file(name: str) -> str:
    stem = name[:-4] if name.endswith(".png") else name
    if not _FIGURE_NAME.match(stem):
        raise ValueError(
            f"figure name {name!r} must be letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return f"{stem}.png"


def _or_empty(frame: pd.DataFrame | None, schema: pa.Schema) -> pd.DataFrame:
    # An engine that does not track a table yet gives None: the table has no rows.
    return pd.DataFrame({name: [] for name in schema.names}) if frame is None else frame


def write_run(
    out_dir: str | os.PathLike[str],
    *,
    summary: dict[str, Any],
    clients: pd.DataFrame,
    timeline: pd.DataFrame,
    replications: pd.DataFrame,
    manifest: dict[str, Any],
    figures: dict[str, bytes] | None = None,
    targets: pd.DataFrame | None = None,
) -> Path:
    """Write one run's results folder at ``out_dir`` and return its path.

    Everything is first written into a hidden sibling ``.<name>.partial-<pid>`` and
    renamed to ``out_dir`` only when complete, so an interrupted run leaves no folder
    under the final name. ``out_dir`` may exist only if it is an empty directory;
    otherwise FileExistsError. Tables are validated (ValueError) before anything is
    written.
    """
    final = Path(out_dir)
    _check_out_dir(final)
    tables = {
        "clients": to_table(clients, CLIENTS_SCHEMA),
        "timeline": to_table(timeline, TIMELINE_SCHEMA),
        "replications": to_table(replications, REPLICATIONS_SCHEMA),
        "targets": to_table(_or_empty(targets, TARGETS_SCHEMA), TARGETS_SCHEMA),
    }
    figure_files = {_figure_file(name): data for name, data in (figures or {}).items()}

    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)  # our own pid's leftover: a crashed earlier attempt
    partial.mkdir()
    try:
        write_json_atomic(partial / FILES["summary"], summary)
        for name, table in tables.items():
            _write_table_atomic(partial / FILES[name], table, 65_536)
        write_json_atomic(partial / FILES["manifest"], manifest)
        for file_name, data in figure_files.items():
            write_bytes_atomic(partial / "figures" / file_name, data)
        _fsync_dir(partial)
        _check_out_dir(final)  # someone may have created it while we were writing
        try:
            # rename(2) replaces an empty directory and refuses a non-empty one.
            os.replace(partial, final)
        except OSError as exc:
            raise FileExistsError(
                f"results folder {final} appeared while the run was being written: {exc}"
            ) from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _fsync_dir(final.parent)
    return final

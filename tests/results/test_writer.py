"""Atomic writes: a writer killed half-way leaves nothing under the final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.results import (
    CLIENTS_SCHEMA,
    REPLICATIONS_SCHEMA,
    TIMELINE_SCHEMA,
    open_run,
    validate_frame,
    write_json_atomic,
    write_parquet_atomic,
    write_run,
)

CHILD = r"""
import sys, time, numpy as np, pandas as pd
from pathlib import Path
import sim.results.writer as w
from sim.results import CLIENTS_SCHEMA
target, marker, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
def stop(tmp):
    marker.write_text(str(tmp))   # half-way: the first chunk is on disk
    time.sleep(60)                # the parent kills us here
w._after_chunk = stop
if kind == "parquet":
    n = 200_000
    df = pd.DataFrame({"strategy": ["s"] * n, "replication": 0, "client": np.arange(n), "cohort": "c",
                       "resolver_group": "g", "recovery_s": 1.0, "failed": 1, "fault_at": 0.0,
                       "switched_at": 1.0, "last_previous_at": 0.5})
    w.write_parquet_atomic(target, df, CLIENTS_SCHEMA, chunk_rows=1000)
else:
    w.write_bytes_atomic(target, b"x" * (5 << 20))
"""


@pytest.mark.parametrize("kind", ["parquet", "bytes"])
def test_writer_killed_half_way_leaves_no_final_file(tmp_path: Path, kind: str) -> None:
    target, marker = tmp_path / "out" / "table.parquet", tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(marker), kind])
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert child.poll() is None, "the writer ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tmp = Path(marker.read_text())
    assert tmp.exists() and tmp.stat().st_size > 0  # the write really was under way
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert not target.exists()
    assert all(p.name.startswith(".") for p in target.parent.iterdir())


def test_json_and_parquet_round_trip(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {"x": np.float64(1.5), "nan": float("nan"), "n": np.int64(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "nan": None, "n": 3}
    df = pd.DataFrame({"strategy": ["s"], "replication": [0], "client": [7], "cohort": ["c"], "resolver_group": ["g"],
                       "recovery_s": [np.nan], "failed": [2], "fault_at": [10.0], "switched_at": [np.nan],
                       "last_previous_at": [12.0]})
    write_parquet_atomic(tmp_path / "c.parquet", df, CLIENTS_SCHEMA)
    back = pd.read_parquet(tmp_path / "c.parquet")
    assert back.client.tolist() == [7] and np.isnan(back.recovery_s[0])


def test_schema_names_missing_and_extra_columns() -> None:
    with pytest.raises(ValueError, match="recovery_s"):
        validate_frame(pd.DataFrame({"strategy": ["s"]}), CLIENTS_SCHEMA)


def test_write_run_refuses_a_non_empty_folder_and_an_exception_leaves_nothing(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(FileExistsError):
        write_run(full, summary={}, clients=pd.DataFrame(), timeline=pd.DataFrame(), replications=pd.DataFrame(), manifest={})
    # bad tables fail validation half-way through building the folder: nothing stays
    out = tmp_path / "r"
    with pytest.raises(ValueError):
        write_run(out, summary={"a": 1}, clients=pd.DataFrame({"bad": [1]}), timeline=pd.DataFrame(),
                  replications=pd.DataFrame(), manifest={})
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["full"]


def test_open_run_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises((FileNotFoundError, ValueError), match="summary.json"):
        open_run(tmp_path)


def test_a_folder_from_before_schema_2_opens_and_says_what_it_lacks(tmp_path: Path) -> None:
    """Schema 2 added targets.parquet, clients.switched_at/last_previous_at and
    replications.changed_at: a folder without them still opens, with them empty."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.results.schema import REPLICATIONS_SCHEMA, TIMELINE_SCHEMA

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"scenario": "old", "engine": "des", "seed": 0, "replications": 1,
                                                      "version": "0.1", "fault_times": [], "strategies": {}}))
    (folder / "manifest.json").write_text(json.dumps({"scenario": {"name": "old"}, "seed": 0, "engine": "des"}))
    old_clients = {"strategy": ["s"], "replication": [0], "client": [1], "cohort": ["c"], "resolver_group": ["g"],
                   "recovery_s": [3.0], "failed": [1], "fault_at": [1.0]}
    pq.write_table(pa.table(old_clients), folder / "clients.parquet")
    pq.write_table(pa.table({n: [] for n in TIMELINE_SCHEMA.names}, schema=TIMELINE_SCHEMA), folder / "timeline.parquet")
    old_reps = pa.schema([f for f in REPLICATIONS_SCHEMA if f.name != "changed_at"])
    pq.write_table(pa.table({n: [] for n in old_reps.names}, schema=old_reps), folder / "replications.parquet")
    run = open_run(folder)
    assert set(run.lacks) == {"targets.parquet", "clients.switched_at", "clients.last_previous_at",
                              "replications.changed_at"}
    assert run.targets.empty and list(run.targets.columns)[-3:] == ["to_previous", "to_current", "rescued"]
    assert np.isnan(run.clients["switched_at"][0]) and run.clients["recovery_s"][0] == 3.0


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_results_files_get_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    """As open(2) would create them (0666 less the umask): mkstemp's 0600 made every
    result and report file unreadable to the rest of a team and to CI artefact upload."""
    previous = os.umask(umask)
    try:
        out = tmp_path / "run"
        empty = {name: pd.DataFrame(columns=list(schema.names)) for name, schema in
                 (("clients", CLIENTS_SCHEMA), ("timeline", TIMELINE_SCHEMA), ("replications", REPLICATIONS_SCHEMA))}
        write_run(out, summary={"a": 1}, manifest={}, figures={"f": b"png"}, **empty)
        written = [p for p in out.rglob("*") if p.is_file()]
        assert len(written) >= 6
        modes = {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777) for p in written}
        assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
        assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    finally:
        os.umask(previous)

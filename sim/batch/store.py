"""A sweep's folder: its spec, one small file per finished unit, the final tables.

Units are written atomically as they finish (`units/CCCC-STRATEGY-RRR.parquet`),
so a sweep killed half-way loses at most the units in flight, and a restart
with the same arguments skips what is there. The spec (scenario digest, grid,
replications, engine) is stored first; a restart with other arguments into
the same folder is refused rather than mixing two sweeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sim.results.writer import write_bytes_atomic, write_json_atomic


class StoreError(ValueError):
    pass


class SweepStore:
    def __init__(self, root: Path, spec: dict[str, Any]) -> None:
        self.root = root
        self.units = root / "units"
        self.spec = spec

    def open(self) -> None:
        self.units.mkdir(parents=True, exist_ok=True)
        path = self.root / "sweep.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored != json.loads(json.dumps(self.spec, default=str)):
                diff = [k for k in self.spec if stored.get(k) != json.loads(json.dumps(self.spec[k], default=str))]
                raise StoreError(f"{self.root}: holds a sweep with other arguments ({', '.join(diff)}); "
                                 "use another --out, or the same arguments to resume")
        else:
            write_json_atomic(path, json.loads(json.dumps(self.spec, default=str)))

    def name(self, cell: int, strategy: str, replication: int) -> Path:
        return self.units / f"{cell:04d}-{strategy}-{replication:03d}.parquet"

    def done(self, cell: int, strategy: str, replication: int) -> bool:
        return self.name(cell, strategy, replication).is_file()

    def put(self, row: dict[str, Any]) -> None:
        import io

        buffer = io.BytesIO()
        pd.DataFrame([row]).to_parquet(buffer, index=False)
        write_bytes_atomic(self.name(row["cell"], row["strategy"], row["replication"]), buffer.getvalue())

    def table(self) -> pd.DataFrame:
        files = sorted(self.units.glob("*.parquet"))
        if not files:
            return pd.DataFrame()
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        return frame.sort_values(["cell", "strategy", "replication"], kind="stable").reset_index(drop=True)

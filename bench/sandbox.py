#!/usr/bin/env python3
"""The local sandbox's cost: the wind-stats example (4 tasks) through the runner, its payloads under
bubblewrap against the same job with the sandbox turned off, in one run (medians).

    python bench/sandbox.py [--runs N]

Target: the sandboxed run within 1.2x of the unsandboxed one. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "wind-stats"


def example_wall_time(home: Path, work: Path) -> float:
    """Submit and drive the example to its end, in process; seconds."""
    from squall.runner import Runner
    from squall.spec import load_spec
    from squall.store import Store

    store = Store(home)
    runner = Runner(store, home)
    try:
        started = time.perf_counter()
        plan = runner.submit(load_spec(str(EXAMPLE / "job.yaml")), "local", work / "results")
        result = runner.drive(plan.job_id)
        elapsed = time.perf_counter() - started
        assert result.job.status == "succeeded", result.job.error
        return elapsed
    finally:
        runner.close()
        store.close()


def sandbox_figures(runs: int, root: Path) -> dict:
    from squall.sites.transports.sandbox import LocalSandbox, local_sandbox

    sandbox = local_sandbox()
    if sandbox.fields is None:
        return {"local_sandbox_wind_stats": {"skipped": sandbox.reason}}
    off = LocalSandbox(None, "turned off for the benchmark's baseline")

    def sandboxed() -> float:
        return example_wall_time(root / "home-sandboxed", root)

    def unsandboxed() -> float:
        with mock.patch("squall.sites.kinds.local_site.local_sandbox", lambda: off):
            return example_wall_time(root / "home-plain", root)

    sandboxed(), unsandboxed()  # warm both homes and the page cache
    pairs = [(sandboxed(), unsandboxed()) for _ in range(runs)]  # interleaved: the same noise on both
    value, baseline = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    return {"local_sandbox_wind_stats": {"value": round(value, 4), "baseline": round(baseline, 4),
                                         "ratio": round(value / baseline, 3), "unit": "s",
                                         "target": "ratio <= 1.2 (baseline: the same job, sandbox off)",
                                         "sandbox": sandbox.reason}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="squall-bench-sandbox-") as scratch:
        print(json.dumps(sandbox_figures(args.runs, Path(scratch)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The server's figures: what the API adds to a job submission, the estimate endpoint's latency, how late
live events reach 200 clients, and what 4 concurrent downloads of an 80 MB result cost the server.

    python bench/server.py [--quick]

Each figure carries its baseline, measured in the same run (``bench/run.py`` conventions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "wind-stats"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(home: Path, *options: str) -> tuple[subprocess.Popen, str, str]:
    import httpx

    from squall.store import Store
    from squall.tokens import create

    store = Store(home)
    token = create(store, "bench", "default", "member")[0]
    store.close()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "squall.cli.main", "--home", str(home), "-q", "server",
                               "--port", str(port), *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(f"{url}/api/v1/me")
            break
        except httpx.ConnectError:
            time.sleep(0.2)
    return server, url, token


def example_files() -> list:
    files = [("spec", ("job.yaml", (EXAMPLE / "job.yaml").read_bytes()))]
    for path in sorted((EXAMPLE / "data").iterdir()) + [EXAMPLE / "wind_stats.py"]:
        files.append(("files", (str(path.relative_to(EXAMPLE)), path.read_bytes())))
    return files


def wait_done(client, url: str, headers: dict, job_id: str) -> None:
    while client.get(f"{url}/api/v1/jobs/{job_id}", headers=headers).json()["data"]["phase"] != "done":
        time.sleep(0.1)


def submission_overhead(runs: int, root: Path) -> dict:
    """``POST /api/v1/jobs`` (the example with its 13 files uploaded) vs ``Runner.submit`` in process; each
    job finishes before the next is submitted (untimed), so no controller competes with the measurement."""
    import httpx

    from squall.runner import Runner
    from squall.spec import load_spec
    from squall.store import Store

    home = root / "home-core"
    store = Store(home)
    runner = Runner(store, home)
    core = []
    for _ in range(runs):
        started = time.perf_counter()
        runner.submit(load_spec(str(EXAMPLE / "job.yaml")), "local", root / "res-core")
        core.append(time.perf_counter() - started)
    runner.close()
    store.close()
    server, url, token = start_server(root / "home-api")
    headers = {"Authorization": f"Bearer {token}"}
    api = []
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(runs):
                started = time.perf_counter()
                answer = client.post(f"{url}/api/v1/jobs", files=example_files(), headers=headers)
                api.append(time.perf_counter() - started)
                wait_done(client, url, headers, answer.json()["data"]["id"])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    added = p95(api) - p95(core)
    return {"api_submission_p95_added": {
        "value": round(added * 1000, 1), "unit": "ms", "target": "< 50 ms added at p95",
        "api_p95_ms": round(p95(api) * 1000, 1), "core_p95_ms": round(p95(core) * 1000, 1), "runs": runs}}


def estimate_latency(runs: int, root: Path) -> dict:
    """``POST /api/v1/estimate`` (the example with its 13 files uploaded, the local site) vs ``estimate_spec``
    in process on the same spec."""
    import httpx

    from squall.estimates import estimate_spec
    from squall.spec import load_spec
    from squall.store import Store

    home = root / "home-estimate-core"
    store = Store(home)
    core = []
    for _ in range(runs):
        started = time.perf_counter()
        estimate_spec(store, home, load_spec(str(EXAMPLE / "job.yaml")), "local", False, "balanced", None, "default")
        core.append(time.perf_counter() - started)
    store.close()
    server, url, token = start_server(root / "home-estimate-api")
    api = []
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(runs):
                started = time.perf_counter()
                answer = client.post(f"{url}/api/v1/estimate", files=example_files(),
                                     headers={"Authorization": f"Bearer {token}"})
                api.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return {"api_estimate_p95": {
        "value": round(p95(api) * 1000, 1), "unit": "ms", "target": "p95 < 100 ms",
        "baseline_core_p95_ms": round(p95(core) * 1000, 1), "ratio": round(p95(api) / p95(core), 2), "runs": runs}}


def _listeners(url: str, token: str, count: int, seconds: float) -> list[float]:
    """``count`` event-stream clients in this process for ``seconds``; each event's lateness."""

    async def run() -> list[float]:
        lags: list[float] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_listen(url, {"Authorization": f"Bearer {token}"}, lags, stop))
                 for _ in range(count)]
        await asyncio.sleep(seconds)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return lags

    return asyncio.run(run())


async def _listen(url: str, headers: dict, lags: list[float], stop: asyncio.Event) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None)) as client:
        async with client.stream("GET", f"{url}/api/v1/events", headers=headers) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    lags.append(time.time() - json.loads(line[6:])["at"])
                if stop.is_set():
                    return


def event_latency(clients: int, jobs: int, root: Path) -> dict:
    """``clients`` organisation streams open while ``jobs`` jobs run: how late each event arrives (from the
    journal's timestamp to its line at a client). The clients run in 4 processes, so that what is measured
    is the server's delivery, not one client process falling behind."""
    from concurrent.futures import ProcessPoolExecutor

    import httpx

    server, url, token = start_server(root / "home-events")
    headers = {"Authorization": f"Bearer {token}"}
    spec = root / "noop"
    spec.mkdir()
    (spec / "job.yaml").write_text('name: noop\ncommand: "sleep 0.5"\nsplit: 2\n')
    try:
        with ProcessPoolExecutor(4) as pool:
            listening = [pool.submit(_listeners, url, token, clients // 4, 40.0) for _ in range(4)]
            time.sleep(3)  # every stream open
            with httpx.Client(timeout=60) as client:
                submitted = [client.post(f"{url}/api/v1/jobs", headers=headers,
                                         files=[("spec", ("job.yaml", (spec / "job.yaml").read_bytes()))])
                             .json()["data"]["id"] for _ in range(jobs)]
                for job_id in submitted:
                    wait_done(client, url, headers, job_id)
            lags = [lag for future in listening for lag in future.result()]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return {"event_latency_p95_200_clients": {
        "value": round(p95(lags) * 1000, 1), "unit": "ms", "target": "< 1000 ms at p95",
        "events_delivered": len(lags), "clients": clients, "jobs": jobs,
        "median_ms": round(statistics.median(lags) * 1000, 1)}}


def peak_rss_growth_mb(pid: int, action) -> float:
    """How far ``action`` raises the process's peak resident memory (its high-water mark, reset first)."""
    def rss(field: str) -> int:
        line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
        return int(line.split()[1])

    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the high-water mark starts again from now
    before = rss("VmRSS:")
    action()
    return (rss("VmHWM:") - before) / 1024


def concurrent_downloads(url: str, headers: dict, clients: int) -> list[float]:
    """Each client's time to first byte; every byte is read (and dropped)."""
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    def one(_) -> float:
        started = time.perf_counter()
        with httpx.stream("GET", url, headers=headers, timeout=300) as answer:
            chunks = answer.iter_raw()
            next(chunks)
            first = time.perf_counter() - started
            for _chunk in chunks:
                pass
        return first

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def results_download(root: Path, clients: int = 4, megabytes: int = 80) -> dict:
    """``clients`` concurrent downloads of a job's results archive (one incompressible ``megabytes`` file):
    the server's peak memory growth and time to first byte, against the same file's plain download."""
    import httpx

    server, url, token = start_server(root / "home-downloads", "--local-site")
    headers = {"Authorization": f"Bearer {token}"}
    spec = (f"name: big\ncommand: [sh, -c, 'head -c {megabytes}M /dev/urandom > $SQUALL_OUTPUT_DIR/big.bin']\n"
            "outputs: [big.bin]\n")
    try:
        with httpx.Client(timeout=120) as client:
            job = client.post(f"{url}/api/v1/jobs", files=[("spec", ("job.yaml", spec.encode()))],
                              headers=headers).json()["data"]
            wait_done(client, url, headers, job["id"])
        figures = {}
        for name, path in (("file", f"/api/v1/jobs/{job['id']}/results/task-0/big.bin"),
                           ("archive", f"/api/v1/jobs/{job['id']}/results")):
            firsts: list[float] = []
            growth = peak_rss_growth_mb(server.pid, lambda: firsts.extend(
                concurrent_downloads(url + path, headers, clients)))
            figures[name] = {"rss_growth_mb": round(growth, 1), "ttfb_max_s": round(max(firsts), 3)}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    archive, plain = figures["archive"], figures["file"]
    return {"results_archive_rss_growth": {
                "value": archive["rss_growth_mb"], "baseline": plain["rss_growth_mb"], "unit": "MB",
                "target": f"< 50 MB for {clients} concurrent {megabytes} MB downloads", "baseline_is": "one file"},
            "results_archive_ttfb": {
                "value": archive["ttfb_max_s"], "baseline": plain["ttfb_max_s"], "unit": "s",
                "ratio": round(archive["ttfb_max_s"] / max(plain["ttfb_max_s"], 1e-6), 2),
                "target": "< 0.5 s", "baseline_is": "one file"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, 50 clients")
    args = parser.parse_args()
    os.environ.setdefault("SQUALL_RESULTS", tempfile.mkdtemp(prefix="squall-bench-results-"))
    with tempfile.TemporaryDirectory(prefix="squall-bench-server-") as scratch:
        root = Path(scratch)
        results = {"quick": args.quick}
        results |= submission_overhead(10 if args.quick else 30, root)
        results |= estimate_latency(20 if args.quick else 100, root)
        results |= event_latency(50 if args.quick else 200, 20, root)
        results |= results_download(root)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Per-site wind statistics: mean, max and a Weibull shape/scale fit.

A Squall payload: reads the CSV files listed in $SQUALL_INPUT_LIST (paths
relative to the task folder, the current directory) and writes one JSON file
per site plus a summary CSV under $SQUALL_OUTPUT_DIR. Standard library only.
"""

import csv
import json
import math
import os
import sys


def weibull_fit(speeds, iterations=50):
    """Maximum-likelihood Weibull shape k and scale c (Newton on k)."""
    xs = [v for v in speeds if v > 0]
    logs = [math.log(v) for v in xs]
    mean_log = sum(logs) / len(logs)
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / len(xs))
    k = (sd / mean) ** -1.086  # Justus' estimate as the start
    for _ in range(iterations):
        powers = [v ** k for v in xs]
        s0 = sum(powers)
        s1 = sum(p * l for p, l in zip(powers, logs))
        s2 = sum(p * l * l for p, l in zip(powers, logs))
        f = s1 / s0 - 1 / k - mean_log
        df = (s2 * s0 - s1 * s1) / (s0 * s0) + 1 / (k * k)
        step = f / df
        k -= step
        if abs(step) < 1e-10:
            break
    c = (sum(v ** k for v in xs) / len(xs)) ** (1 / k)
    return k, c


def site_stats(path):
    speeds, site = [], None
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            site = row["site"]
            speeds.append(float(row["speed_mps"]))
    if not speeds:
        raise ValueError("%s has no measurements" % path)
    k, c = weibull_fit(speeds)
    return {
        "site": site,
        "samples": len(speeds),
        "mean_mps": round(sum(speeds) / len(speeds), 4),
        "max_mps": max(speeds),
        "weibull_k": round(k, 4),
        "weibull_c_mps": round(c, 4),
    }


def main():
    out_dir = os.environ["SQUALL_OUTPUT_DIR"]
    with open(os.environ["SQUALL_INPUT_LIST"]) as handle:
        inputs = [line.rstrip("\n") for line in handle if line.strip()]
    results = []
    for path in inputs:
        stats = site_stats(path)
        results.append(stats)
        with open(os.path.join(out_dir, "%s.json" % stats["site"]), "w") as handle:
            json.dump(stats, handle, indent=2, sort_keys=True)
        print("%-10s n=%5d mean=%6.2f max=%6.2f k=%.3f c=%.3f" % (
            stats["site"], stats["samples"], stats["mean_mps"], stats["max_mps"],
            stats["weibull_k"], stats["weibull_c_mps"]))
    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["site", "samples", "mean_mps", "max_mps", "weibull_k", "weibull_c_mps"])
        writer.writeheader()
        writer.writerows(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

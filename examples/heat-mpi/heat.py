#!/usr/bin/env python3
"""2-D heat diffusion, explicit five-point stencil, rows split over MPI ranks.

A Squall payload: for each case file in $SQUALL_INPUT_LIST (JSON: grid size, steps, diffusion number,
fixed edge temperature, hot spots), every rank updates its block of rows, exchanging one halo row with each
neighbour per step; rank 0 gathers the field and writes ``<case>.json`` (summary) and ``<case>.csv`` (the
field) under $SQUALL_OUTPUT_DIR. Each cell is updated with the same arithmetic in the same order as a
serial run, so over 2 nodes x 2 ranks the result equals ``heat.py --serial CASE`` (within 1e-12).
Needs mpi4py (Debian's python3-mpi4py) only when run with more than one rank.
"""

import json
import os
import sys


def initial(case):
    nx, ny, edge = case["nx"], case["ny"], float(case["edge"])
    field = [[edge if i in (0, nx - 1) or j in (0, ny - 1) else 0.0 for j in range(ny)] for i in range(nx)]
    for i, j, temperature in case["hot"]:
        field[i][j] = float(temperature)
    return field


def step(rows, above, below, alpha):
    """One explicit step for ``rows`` (interior columns only); ``above``/``below`` are the halo rows
    (None at the grid's fixed top and bottom edges)."""
    padded = [above] + rows + [below]
    new = []
    for k in range(1, len(padded) - 1):
        up, row, down = padded[k - 1], padded[k], padded[k + 1]
        if up is None or down is None:
            new.append(list(row))  # a fixed edge row
            continue
        out = list(row)
        for j in range(1, len(row) - 1):
            out[j] = row[j] + alpha * (up[j] + down[j] + row[j - 1] + row[j + 1] - 4.0 * row[j])
        new.append(out)
    return new


def block(nx, rank, size):
    """The rows [start, stop) rank owns: contiguous and as even as possible."""
    base, extra = divmod(nx, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def solve(case, comm=None):
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    field = initial(case)
    start, stop = block(case["nx"], rank, size)
    rows = field[start:stop]
    for _ in range(case["steps"]):
        above = below = None
        if comm is not None:
            if rank > 0:
                above = comm.sendrecv(rows[0], dest=rank - 1, source=rank - 1)
            if rank < size - 1:
                below = comm.sendrecv(rows[-1], dest=rank + 1, source=rank + 1)
        rows = step(rows, above, below, case["alpha"])
    if comm is None:
        return rows
    blocks = comm.gather(rows, root=0)
    return [row for part in blocks for row in part] if rank == 0 else None


def summary(field):
    values = [v for row in field for v in row]
    return {"cells": len(values), "sum": sum(values), "max": max(values),
            "centre": field[len(field) // 2][len(field[0]) // 2]}


def write(out_dir, name, field, ranks, hosts):
    with open(os.path.join(out_dir, name + ".json"), "w") as handle:
        json.dump({"case": name, "ranks": ranks, "hosts": hosts, **summary(field)}, handle, indent=1)
    with open(os.path.join(out_dir, name + ".csv"), "w") as handle:
        handle.writelines(",".join(repr(v) for v in row) + "\n" for row in field)


def main(argv):
    if argv[:1] == ["--serial"]:  # the reference: one case, one process, no MPI
        case = json.load(open(argv[1]))
        print(json.dumps(summary(solve(case))))
        return 0
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out_dir = os.environ["SQUALL_OUTPUT_DIR"]
    with open(os.environ["SQUALL_INPUT_LIST"]) as handle:
        cases = [line.strip() for line in handle if line.strip()]
    hosts = sorted(set(comm.allgather(MPI.Get_processor_name())))
    for path in cases:
        field = solve(json.load(open(path)), comm)  # paths are relative to the task folder
        if comm.Get_rank() == 0:
            write(out_dir, os.path.splitext(os.path.basename(path))[0], field, comm.Get_size(), hosts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

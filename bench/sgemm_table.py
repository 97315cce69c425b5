#!/usr/bin/python3
"""Turns the output of bench/sgemm_bench.sh into the markdown table of
bench/README.md.

    python3 bench/sgemm_table.py sgemm-bench.txt

For every implementation, shape and thread count it takes, across the
rounds, the best wall-clock GFLOP/s (the run least disturbed by other
processes on the shared cores) and the median GFLOP per CPU-second (work
per core actually used, which time slices lost to other processes do not
lower). Ratios to OpenBLAS and gonum are given for both.
"""
import re
import statistics
import sys
from collections import defaultdict

GO = re.compile(r"^BenchmarkSgemm(Impl/(\w+)|Gonum|Naive)/(\d+x\d+x\d+)(?:-(\d+))?\s+\d+\s+\d+ ns/op\s+(.*)$")
PY = re.compile(r"^OpenBLAS/(\d+x\d+x\d+)/threads=(\d+)\s+\d+\s+\d+ ns/op\s+([\d.]+) GFLOP/s\s+([\d.]+) GFLOP/cpu-s")
METRIC = re.compile(r"([\d.]+) (GFLOP/s|GFLOP/cpu-s)")


def parse(lines):
    wall, cpu = defaultdict(list), defaultdict(list)
    for line in lines:
        m = GO.match(line)
        if m:
            kind = m.group(2) or m.group(1).lower()
            key = (kind, m.group(3), int(m.group(4) or 1))
            for v, unit in METRIC.findall(m.group(5)):
                (wall if unit == "GFLOP/s" else cpu)[key].append(float(v))
            continue
        m = PY.match(line)
        if m:
            key = ("openblas", m.group(1), int(m.group(2)))
            wall[key].append(float(m.group(3)))
            cpu[key].append(float(m.group(4)))
    return wall, cpu


def main():
    wall, cpu = parse(open(sys.argv[1]).read().splitlines())
    shapes = sorted({k[1] for k in wall}, key=lambda s: [int(x) for x in s.split("x")])
    kinds = ["avx512", "avx2", "gonum", "naive", "openblas"]

    def cell(kind, shape, th, agg):
        d = wall if agg is max else cpu
        v = d.get((kind, shape, th))
        return agg(v) if v else None

    fmt = lambda v: "–" if v is None else f"{v:.1f}"
    ratio = lambda a, b: "–" if a is None or b is None else f"{a / b:.2f}"
    for th in (1, 2):
        print(f"\n**{th} thread{'s' if th > 1 else ''}** — best wall GFLOP/s (median GFLOP/cpu-s)\n")
        print("| M×K×N | ftune avx512 | ftune avx2 | gonum | naive | OpenBLAS | avx512/OpenBLAS | avx512/gonum |")
        print("|---|---|---|---|---|---|---|---|")
        for s in shapes:
            row = [s]
            for kind in kinds:
                row.append(f"{fmt(cell(kind, s, th, max))} ({fmt(cell(kind, s, th, statistics.median))})")
            a, o, g = (cell(k, s, th, max) for k in ("avx512", "openblas", "gonum"))
            ac, oc, gc = (cell(k, s, th, statistics.median) for k in ("avx512", "openblas", "gonum"))
            row.append(f"{ratio(a, o)} ({ratio(ac, oc)})")
            row.append(f"{ratio(a, g)} ({ratio(ac, gc)})")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Table of bench/cpu_families.sh: per family and thread count, the min and
median wall time of all its timed steps (every run pooled), the ratio of
each to Llama's, CPU seconds per step (mean over runs) and the highest
peak RSS of its runs.

Usage: python3 bench/cpu_families_table.py RESULTS.jsonl ..."""
import json
import statistics
import sys

ORDER = ["llama", "qwen3", "gemma2", "gemma3", "phi3", "phi4mini"]

runs = {}
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault((r["threads"], r["family"]), []).append(r)

print("| family | threads | step s min | step s median | min / Llama | median / Llama | CPU s/step | peak RSS MiB | runs × steps |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for th in sorted({k[0] for k in runs}, reverse=True):
    base = runs.get((th, "llama"))
    bmin = min(s for r in base for s in r["steps_s"]) if base else None
    bmed = statistics.median(s for r in base for s in r["steps_s"]) if base else None
    for fam in ORDER:
        rs = runs.get((th, fam))
        if not rs:
            continue
        steps = [s for r in rs for s in r["steps_s"]]
        mn, md = min(steps), statistics.median(steps)
        cpu = statistics.mean(r["cpu_s_per_step"] for r in rs)
        rss = max(r["peak_rss_mib"] for r in rs)
        rmin = f"{mn / bmin:.2f}" if bmin else ""
        rmed = f"{md / bmed:.2f}" if bmed else ""
        print(f"| {fam} | {th} | {mn:.3f} | {md:.3f} | {rmin} | {rmed} | {cpu:.2f} | {rss:.0f} | {len(rs)} × {len(rs[0]['steps_s'])} |")

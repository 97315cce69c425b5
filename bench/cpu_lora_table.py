"""Turns the JSON lines of bench/cpu_lora.sh into the Markdown table of
bench/README.md: per configuration the best run's tokens/s (and its peak RSS,
step time and CPU seconds per step) over all the files given, with ftune's ratio to PyTorch at the same
thread count and precision and to PyTorch's best thread count for that shape and precision.
Lines without a precision (before 2026-12-06) are f32. Lines with an objective (bench/cpu_dpo.sh:
"dpo") make their own rows, compared with PyTorch's of the same objective; "no_pool" marks
ftune's steps left to Go's collector rather than recycled through the CPU pool (the trainer's
default since 2026-12-06); "no_arena" (before) marks Go's heap rather than the step arena of then.
Lines with "dora" or "dropout" (bench/cpu_dora.sh) make their own rows too, named after the
variant (LoRA or DoRA, and the dropout), compared with PyTorch's of the same variant."""
import json, sys

def lines(paths):
    for p in paths:
        yield from open(p)

def main(paths):
    best = {}
    runs = {}
    records = [json.loads(l) for l in (l.strip() for l in lines(paths)) if l.startswith("{")]
    # A cpu_dora.sh file: every line is named after its variant.
    variants = any("dora" in r or "dropout" in r for r in records)
    for r in records:
        shape = r["shape"] + (" " + r["objective"].upper() if r.get("objective") else "")
        if variants:
            shape += (" DoRA" if r.get("dora") else " LoRA") + " dropout %g" % r.get("dropout", 0)
        quant = r["quant"] + (" heap" if r.get("no_arena") or r.get("no_pool") else "")
        key = (shape, r.get("precision", "f32"), r["side"], quant, r["threads"])
        runs[key] = runs.get(key, 0) + 1
        if key not in best or r["tokens_per_s"] > best[key]["tokens_per_s"]:
            best[key] = r
    print("| shape (batch x seq) | precision | side | weights | threads | tokens/s (best of %s) | step s | CPU s/step | peak RSS MiB | vs torch same threads | vs torch best |"
          % "/".join(sorted({str(n) for n in runs.values()})))
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    shapes = list(dict.fromkeys(k[0] for k in best))  # in the order first seen
    for shape in shapes:
        for prec in ("f32", "bf16"):
            torch = {k[4]: v for k, v in best.items() if k[0] == shape and k[1] == prec and k[2] == "torch"}
            tbest = max((v["tokens_per_s"] for v in torch.values()), default=0)
            rows = sorted((k, v) for k, v in best.items() if k[0] == shape and k[1] == prec)
            rows.sort(key=lambda kv: (kv[0][2] != "torch", kv[0][3], kv[0][4]))
            for k, v in rows:
                same = torch.get(k[4])
                r_same = "%.2fx" % (v["tokens_per_s"] / same["tokens_per_s"]) if same and k[2] != "torch" else ""
                r_best = "%.2fx" % (v["tokens_per_s"] / tbest) if tbest and k[2] != "torch" else ""
                quant, heap = k[3].split(" ")[0], k[3].endswith(" heap")
                wt = {"f32": "bf16→f32" if k[2] == "ftune" else "f32", "nf4": "NF4"}[quant]
                if prec == "bf16":
                    wt = {"f32": "bf16" if k[2] == "ftune" else "f32, autocast", "nf4": "NF4"}[quant]
                if heap:
                    wt += ", Go heap"
                print("| %s (%dx%d) | %s | %s | %s | %d | %.1f | %.3f | %.3f | %.0f | %s | %s |" % (
                    shape, v["batch"], v["seq"], prec, k[2], wt, k[4], v["tokens_per_s"], v["step_s"],
                    v.get("cpu_s_per_step", 0), v["peak_rss_mib"], r_same, r_best))

if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Turns the JSON of fusekit_bench_merge_methods (--benchmark_out=FILE --benchmark_out_format=json) into the
markdown table of docs/merging.md.

    python3 benchmarks/merge/table.py bench.json            # every row
    python3 benchmarks/merge/table.py --digest bench.json   # one row per method and policy, as in docs/merging.md §8

Columns: wall time per call; the bandwidth bound (compulsory bytes / memcpy bandwidth of the same bytes measured
in the same run); wall/bound; CPU seconds of all threads per call divided by the thread count, over the bound
(an estimate of wall/bound on an otherwise idle machine: on a shared machine the wall time includes waiting
for a core).
"""
import json
import sys

TARGETS = {"task_arithmetic": "2×", "linear": "2×", "varm": "3×", "sce": "3×", "ties": "3×", "dare_ties": "4×",
           "dare_linear": "4×", "della": "4×"}


def digest(path):
    """method × policy rows, one cell per (shape, inputs): 'wall ms · wall/bound×', plus faults per call where
    the benchmark counted any."""
    data = json.load(open(path))
    rows, cols = {}, []
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        parts = b["name"].split("/")
        args = {kv.split(":")[0]: kv.split(":")[1] for kv in parts[3:] if ":" in kv}
        col = f"{args.get('rows')}×{args.get('cols')}, {args.get('inputs')}"
        if col not in cols:
            cols.append(col)
        wall = b["real_time"] / 1e3 if b.get("time_unit") == "ms" else b["real_time"] / 1e9
        cell = f"{wall * 1e3:.1f} ms · **{wall / b['bound_s']:.1f}×**"
        if b.get("faults_per_call", 0) >= 100:
            cell += f" ({b['faults_per_call'] / 1e3:.1f}K faults)"
        rows.setdefault((parts[0], parts[2]), {})[col] = cell
    print("| method | policy | " + " | ".join(cols) + " | target |")
    print("|---|---|" + "---|" * len(cols) + "---|")
    for (method, policy), cells in rows.items():
        print(f"| {method} | {policy} | " + " | ".join(cells.get(c, "") for c in cols) +
              f" | {TARGETS.get(method, '—') if policy == 'par' else '—'} |")


def main(path):
    data = json.load(open(path))
    ctx = data.get("context", {})
    load = ctx.get("load_avg", [])
    print(f"host: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz, load average at start "
          f"{', '.join(f'{x:.1f}' for x in load)}; {ctx.get('date', '')}")
    print()
    print("| method | policy | shape | inputs | wall ms | bound ms | wall/bound | cpu/threads/bound | GB/s | memcpy GB/s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        parts = b["name"].split("/")
        method, policy = parts[0], parts[2]
        args = {kv.split(":")[0]: kv.split(":")[1] for kv in parts[3:] if ":" in kv}
        wall = b["real_time"] / 1e3 if b.get("time_unit") == "ms" else b["real_time"] / 1e9
        bound = b["bound_s"]
        print(f"| {method} | {policy} | {args.get('rows')}×{args.get('cols')} | {args.get('inputs')} | "
              f"{wall * 1e3:.1f} | {bound * 1e3:.1f} | {wall / bound:.1f} | {b['cpu_bound_ratio']:.2f} | "
              f"{b['bytes_per_second'] / 1e9:.2f} | {b['memcpy_GBps']:.1f} |")


if __name__ == "__main__":
    if sys.argv[1] == "--digest":
        digest(sys.argv[2])
    else:
        main(sys.argv[1])

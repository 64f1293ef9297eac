#!/usr/bin/env python3
"""Prints run.sh's table from its label<TAB>JSON file: medians over the runs of each cell.

Columns: the workload's figure (req/s for W1 and W2, MB/s of payload for W3, p50/p99 round
trip for W4), its ratio to raw's (throughput over raw's; for W4 raw's p50 over this one's,
so below 1 is always slower), the spread of the figure over the runs ((max - min) / median:
BENCHMARK.md treats differences under 15% as noise), and CPU microseconds per request,
client plus server.

Labels of the form system@build (run.sh --bin-dir) add a column "vs <first build>": the
figure over the same system's in the first build seen (for W4 its p50 over this one's, so
below 1 is slower here too).
"""
import json
import statistics
import sys


def main(path):
    cells = {}
    order = []
    with open(path) as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            r = json.loads(text)
            key = (r["workload"], label)
            if key not in cells:
                cells[key] = []
                order.append(key)
            cells[key].append(r)

    def med(runs, field):
        return statistics.median(r[field] for r in runs)

    def cpu_us(runs):
        per = [(r["client_cpu_s"] + (r["server_cpu_s"] or 0)) * 1e6 / r["requests"] for r in runs if r["requests"]]
        return statistics.median(per) if per else float("nan")

    def figure(workload, runs):
        if workload == "W3":
            return med(runs, "mbps"), f"{med(runs, 'mbps'):.0f} MB/s"
        if workload == "W4":
            p50 = med(runs, "p50_us")
            return 1.0 / p50 if p50 else 0.0, f"p50 {p50:.1f} / p99 {med(runs, 'p99_us'):.1f} us"
        return med(runs, "rps"), f"{med(runs, 'rps'):,.0f} req/s"

    def spread(workload, runs):
        values = [figure(workload, [r])[0] for r in runs]
        mid = statistics.median(values)
        return f"{(max(values) - min(values)) / mid * 100:.0f}%" if mid else "-"

    builds = []
    for _, label in order:
        if "@" in label and label.split("@", 1)[1] not in builds:
            builds.append(label.split("@", 1)[1])
    first = builds[0] if len(builds) > 1 else None
    vs_first = f"vs {first}" if first else ""
    width = max([6] + [len(label) for _, label in order])
    header = (f"| {'workload':8} | {'system':{width}} | {'runs':4} | {'figure':28} | {'vs raw':6} | {'spread':6} "
              f"| {'CPU us/req':10} |" + (f" {vs_first:9} |" if first else ""))
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for workload, label in order:
        runs = cells[(workload, label)]
        value, text = figure(workload, runs)
        raw = cells.get((workload, "raw"))
        ratio = f"{value / figure(workload, raw)[0]:.2f}" if raw and figure(workload, raw)[0] else "-"
        line = (f"| {workload:8} | {label:{width}} | {len(runs):4} | {text:28} | {ratio:6} | {spread(workload, runs):>6} "
                f"| {cpu_us(runs):10.2f} |")
        if first:
            ref = cells.get((workload, label.split("@", 1)[0] + "@" + first)) if "@" in label else None
            rel = f"{value / figure(workload, ref)[0]:.2f}" if ref and figure(workload, ref)[0] else "-"
            line += f" {rel:9} |"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1])

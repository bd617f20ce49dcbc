#!/usr/bin/env python3
"""Tables and plots for scripts/bench-compare.sh.

Reads --results (one bench report per line, tagged with "label"), prints the side-by-side
table (tickwire, nats, redis, and tickwire / the better peer), and writes into --out:
bench-compare.md (the tables), bench-compare.json (every report plus the machine line),
fanout.png (delivered msgs/s against subscribers) and latency.png (latency percentiles at
50,000 msgs/s to 10 subscribers), both drawn by gnuplot.
"""

import argparse
import json
import os
import subprocess
import sys

PEERS = ("nats", "redis")


def load(path):
    runs = {}
    order = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            runs[(r["label"], r["system"])] = r
            order.append(r)
    return runs, order


def fmt_num(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def metric(runs, label, system, fn):
    r = runs.get((label, system))
    if r is None or not r.get("passed", False):
        return None
    try:
        return fn(r)
    except (KeyError, TypeError):
        return None


def comparison_rows():
    """(scenario, figure, run label, value of a report, higher is better) per table row."""
    delivered = lambda r: r["delivered_per_s"]
    rows = []
    for n in (1, 10, 100):
        rows.append((f"fan-out, {n} subscriber{'s' if n > 1 else ''}", "delivered msgs/s",
                     f"fanout-{n}", delivered, True))
    rows.append(("ingest, 1 publisher, 1 subscriber", "msgs/s", "ingest",
                 lambda r: r["accepted_per_s"] if r["system"] == "tickwire" else r["delivered_per_s"],
                 True))
    for q, name in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9")):
        rows.append((f"latency, 50,000 msgs/s to 10 subscribers", f"{name} µs (lower is better)",
                     "latency", (lambda q: lambda r: r["latency_us"][q])(q), False))
    rows.append(("idle connections (with keepalives)", "server bytes per connection (lower is better)",
                 "conns", lambda r: r["conns"]["bytes_per_connection"], False))
    rows.append(("idle connections (with keepalives)", "MiB for 100,000 (lower is better)", "conns",
                 lambda r: r["conns"]["mib_per_100k"], False))
    return rows


def build_tables(runs, order, machine, settings):
    lines = []
    lines.append(f"Machine: {machine}. Settings: {settings}. Server pinned to core 0, load "
                 "generator to core 1.")
    lines.append("")
    lines.append("| scenario | figure | tickwire | nats-server | redis-server | tickwire / better peer |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for title, figure, label, fn, higher_better in comparison_rows():
        t = metric(runs, label, "tickwire", fn)
        peers = [metric(runs, label, p, fn) for p in PEERS]
        known = [p for p in peers if p is not None]
        ratio = "-"
        if t is not None and known:
            best = max(known) if higher_better else min(known)
            if best > 0:
                ratio = f"{t / best:.2f}"
        lines.append(f"| {title} | {figure} | {fmt_num(t)} | {fmt_num(peers[0])} | "
                     f"{fmt_num(peers[1])} | {ratio} |")
    extra = []
    for label, what in (("ingest-1p", "1 producer"), ("ingest-4p", "4 producers")):
        r = runs.get((label, "tickwire"))
        if r:
            extra.append(f"tickwire ingest with {what} and no subscriber: "
                         f"{fmt_num(r.get('accepted_per_s'))} ticks/s accepted "
                         f"(check {'passed' if r.get('passed') else 'FAILED'}).")
    w0 = runs.get(("latency-w0", "tickwire"))
    if w0 and "latency_us" in w0:
        l = w0["latency_us"]
        extra.append(f"tickwire latency with BATCH_WINDOW_MS=0: p50 / p90 / p99 / p99.9 "
                     f"{l['p50']} / {l['p90']} / {l['p99']} / {l['p999']} µs.")
    if extra:
        lines.append("")
        lines.extend(extra)
    lines.append("")
    lines.append("Every run (rates over the measured window; CPU seconds over the window):")
    lines.append("")
    lines.append("| run | system | delivered msgs/s | accepted/s | p50 / p99 µs | server CPU s | "
                 "load generator CPU s | server peak RSS MiB | check |")
    lines.append("|---|---|---:|---:|---|---:|---:|---:|---|")
    for r in order:
        lat = r.get("latency_us")
        lat_s = f"{lat['p50']} / {lat['p99']}" if lat else "-"
        rss = r.get("server_peak_rss_kb")
        lines.append(
            f"| {r['label']} | {r['system']} | {fmt_num(r.get('delivered_per_s'))} | "
            f"{fmt_num(r.get('accepted_per_s'))} | {lat_s} | {fmt_num(r.get('server_cpu_s'), 2)} | "
            f"{fmt_num(r.get('bench_cpu_s'), 2)} | "
            f"{fmt_num(rss / 1024 if rss else None, 1)} | "
            f"{'passed' if r.get('passed') else 'FAILED'} |")
    return "\n".join(lines) + "\n"


def plots(runs, out):
    fan = os.path.join(out, "fanout.dat")
    with open(fan, "w") as f:
        f.write("# subscribers tickwire nats redis (delivered msgs/s)\n")
        for n in (1, 10, 100):
            vals = [metric(runs, f"fanout-{n}", s, lambda r: r["delivered_per_s"])
                    for s in ("tickwire",) + PEERS]
            f.write(f"{n} " + " ".join("NaN" if v is None else f"{v:.0f}" for v in vals) + "\n")
    lat = os.path.join(out, "latency.dat")
    with open(lat, "w") as f:
        f.write("# system p50 p90 p99 p99.9 (µs)\n")
        for label, system, name in (("latency", "tickwire", "tickwire"),
                                    ("latency-w0", "tickwire", "tickwire-w0"),
                                    ("latency", "nats", "nats-server"),
                                    ("latency", "redis", "redis-server")):
            r = runs.get((label, system))
            if not r or "latency_us" not in r:
                continue
            l = r["latency_us"]
            f.write(f"\"{name}\" {max(l['p50'], 1)} {max(l['p90'], 1)} {max(l['p99'], 1)} "
                    f"{max(l['p999'], 1)}\n")
    script = f"""
set terminal pngcairo size 900,560 noenhanced font ",11"
set output "{os.path.join(out, 'fanout.png')}"
set title "Fan-out: delivered msgs/s, 1 publisher, 64-byte messages"
set xlabel "subscribers"
set ylabel "delivered msgs/s"
set logscale x
set logscale y
set xtics ("1" 1, "10" 10, "100" 100)
set key top left
set grid
plot "{fan}" using 1:2 with linespoints lw 2 pt 7 title "tickwire", \\
     "" using 1:3 with linespoints lw 2 pt 5 title "nats-server", \\
     "" using 1:4 with linespoints lw 2 pt 9 title "redis-server"
set output "{os.path.join(out, 'latency.png')}"
unset logscale x
set logscale y
unset xtics
set xtics
set title "Latency at 50,000 msgs/s to 10 subscribers, publish to receive (tickwire-w0: BATCH_WINDOW_MS=0)"
set yrange [10:*]
set xlabel ""
set ylabel "microseconds"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
plot "{lat}" using 2:xtic(1) title "p50", "" using 3 title "p90", "" using 4 title "p99", \\
     "" using 5 title "p99.9"
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.remove(fan)
    os.remove(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--settings", default="")
    args = ap.parse_args()
    runs, order = load(args.results)
    tables = build_tables(runs, order, args.machine, args.settings)
    sys.stdout.write(tables)
    with open(os.path.join(args.out, "bench-compare.md"), "w") as f:
        f.write("# tickwire, nats-server and redis-server: one run of scripts/bench-compare.sh\n\n")
        f.write(tables)
        f.write("\n![fan-out](fanout.png)\n\n![latency](latency.png)\n")
    with open(os.path.join(args.out, "bench-compare.json"), "w") as f:
        json.dump({"machine": args.machine, "settings": args.settings, "runs": order}, f, indent=1)
        f.write("\n")
    plots(runs, args.out)
    failed = [f"{r['label']}/{r['system']}" for r in order if not r.get("passed")]
    if failed:
        print("bench-compare: checks FAILED in " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

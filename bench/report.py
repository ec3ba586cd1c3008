#!/usr/bin/env python3
"""Turn the raw TSV files written by bench/compare.sh into a JSON report and ratio tables.

usage: report.py --work DIR --out results/DATE-HOST.json   (called by compare.sh)
       report.py --show results/DATE-HOST.json              (print the tables of a saved run)
"""
import argparse
import json
import statistics
import sys

SCHEMA = "netlens-bench/1"
PEERS = ["tcpdump", "tcpdump-copy", "tcptrace", "tcpflow", "tshark-conv"]
PROBE_FOR_FILE = {"main": "probe-flow", "pcapng": "probe-flow-pcapng", "small": "probe-flow-small"}


def tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def num(s, conv=float):
    try:
        return conv(s)
    except (TypeError, ValueError):
        return None


def probe_fields(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = int(v) if v.isdigit() else num(v) if v.replace(".", "", 1).isdigit() else v
    return out


def paired_ratio(e, p):
    """Median over rounds of probe wall / netlens wall, both from the same round (compare.sh
    runs every measurement once per round), so a slow stretch of the machine weighs on
    both sides of each ratio."""
    walls = lambda x: {r["run"]: r["wall_s"] for r in x["runs"] if r["exit"] == 0 and r["wall_s"]}
    a, b = walls(e), walls(p)
    both = sorted(set(a) & set(b))
    if not both:
        return None
    return round(statistics.median(b[i] / a[i] for i in both), 3)


def build(work):
    meta = dict((r[0], r[1] if len(r) > 1 else "") for r in tsv(f"{work}/meta.tsv"))
    for k in ("nproc", "mem_total_kib", "runs"):
        if k in meta:
            meta[k] = num(meta[k], int)
    files = {}
    for key, path, size, pkts, fmt in tsv(f"{work}/files.tsv"):
        files[key] = {"path": path, "bytes": int(size), "packets": int(pkts), "format": fmt}
    runs = {}
    for r in tsv(f"{work}/runs.tsv"):
        name, i, rc, wall, rss, us, ss, es = (r + [""] * 8)[:8]
        runs.setdefault(name, []).append({
            "run": int(i), "exit": int(rc), "wall_s": num(wall), "rss_kib": num(rss, int),
            "user_s": num(us), "sys_s": num(ss), "gnu_time_elapsed_s": num(es)})
    results = []
    for name, group, fkey, status, note, cmd in ((r + [""] * 6)[:6] for r in tsv(f"{work}/benches.tsv")):
        e = {"name": name, "group": group, "file": fkey, "command": cmd, "status": status,
             "runs": runs.get(name, [])}
        if note:
            e["note"] = note
        ok = [x for x in e["runs"] if x["exit"] == 0 and x["wall_s"] is not None]
        if status == "ok" and ok:
            pk = files.get(fkey, {}).get("packets", 0)
            w = statistics.median(x["wall_s"] for x in ok)
            e["median_wall_s"] = round(w, 4)
            e["median_rss_kib"] = int(statistics.median(x["rss_kib"] or 0 for x in ok))
            e["max_rss_kib"] = max(x["rss_kib"] or 0 for x in ok)
            e["median_cpu_s"] = round(statistics.median((x["user_s"] or 0) + (x["sys_s"] or 0) for x in ok), 3)
            e["packets"] = pk
            e["pps"] = round(pk / w) if w > 0 else None
            fbytes = files.get(fkey, {}).get("bytes", 0)  # the harness row reads no file
            e["file_mb_per_s"] = round(fbytes / 1e6 / w, 1) if w > 0 else None
        try:
            with open(f"{work}/{name}.probe") as f:
                e["probe_self_report"] = probe_fields(f.readline())
        except OSError:
            pass
        results.append(e)
    by = {e["name"]: e for e in results}
    ratios = {}
    for e in results:
        if e["group"] != "netlens" or not e.get("pps"):
            continue
        r = {}
        p = by.get(PROBE_FOR_FILE.get(e["file"], ""))
        if p and p.get("pps"):
            r["vs_probe_flow"] = round(e["pps"] / p["pps"], 3)
            paired = paired_ratio(e, p)
            if paired is not None:
                r["vs_probe_flow_paired"] = paired
        if e["file"] == "main":
            for peer in PEERS:
                q = by.get(peer)
                if q and q.get("pps"):
                    r[f"vs_{peer}"] = round(e["pps"] / q["pps"], 3)
                    if q.get("median_rss_kib"):
                        r[f"rss_vs_{peer}"] = round(e["median_rss_kib"] / q["median_rss_kib"], 3)
        ratios[e["name"]] = r
    return {"schema": SCHEMA, "meta": meta, "files": files, "results": results, "ratios": ratios,
            "growth": growth(by)}


# How cost grows from the small file to the main one: (small run, main run) of one mode.
GROWTH = {"summary": ("nl-small-summary", "nl-summary"), "all": ("nl-small-all", "nl-all-json"),
          "probe-flow": ("probe-flow-small", "probe-flow")}


def growth(by):
    """Peak RSS of the main file over the small file's, and cost per packet on the small file
    over the main file's (>1 = a packet costs more on the small file), both as a ratio of the
    medians and paired: per round, from the two runs of that round (compare.sh plans each
    small run right after its main run, so a pair shares the machine's speed of the moment)."""
    out = {}
    for mode, (s, m) in GROWTH.items():
        a, b = by.get(s), by.get(m)
        if not (a and b and a.get("pps") and b.get("pps")):
            continue
        g = {"rss_ratio": round(b["median_rss_kib"] / a["median_rss_kib"], 3) if a.get("median_rss_kib") else None,
             "per_packet_ratio": round(b["pps"] / a["pps"], 3)}
        ok = lambda x: {r["run"]: r for r in x["runs"] if r["exit"] == 0 and r["wall_s"]}
        ra, rb = ok(a), ok(b)
        both = sorted(set(ra) & set(rb))
        if both:
            g["per_packet_ratio_paired"] = round(statistics.median(
                (ra[i]["wall_s"] / a["packets"]) / (rb[i]["wall_s"] / b["packets"]) for i in both), 3)
            g["rss_ratio_paired"] = round(statistics.median(
                rb[i]["rss_kib"] / ra[i]["rss_kib"] for i in both if ra[i]["rss_kib"]), 3)
        # Net of the harness's fixed cost per run (the `true` row): what the program itself
        # costs per packet, without the wrappers' start-up that weighs on a short run.
        noop = by.get("harness-noop")
        fixed = noop.get("median_wall_s") if noop and noop.get("status") == "ok" else None
        if fixed is not None and a["median_wall_s"] > fixed and b["median_wall_s"] > fixed:
            g["harness_fixed_s"] = fixed
            g["per_packet_ratio_net"] = round(
                ((a["median_wall_s"] - fixed) / a["packets"]) / ((b["median_wall_s"] - fixed) / b["packets"]), 3)
            if both:
                g["per_packet_ratio_net_paired"] = round(statistics.median(
                    ((ra[i]["wall_s"] - fixed) / a["packets"]) / ((rb[i]["wall_s"] - fixed) / b["packets"])
                    for i in both), 3)
        out[mode] = g
    return out


def fmt_pps(v):
    return f"{v / 1e6:.2f}M" if v else "-"


def fmt_x(v):
    return f"{v:.2f}x" if v is not None else "-"


def table(rows, head):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).rjust(w[i]) if i else str(x).ljust(w[i]) for i, x in enumerate(r))
    return "\n".join([line(head), line(["-" * n for n in w])] + [line(r) for r in rows])


def show(rep, out=sys.stdout):
    m, files, res = rep["meta"], rep["files"], rep["results"]
    print(f"\nnetlens bench  {m.get('date')}  host {m.get('host')}  {m.get('cpu')} x{m.get('nproc')}  "
          f"load {m.get('loadavg_start')} -> {m.get('loadavg_end')}  N={m.get('runs')}  "
          f"netlens build: {m.get('netlens_build')} ({m.get('netlens_git')})", file=out)
    for k, f in files.items():
        print(f"  {k:7} {f['path']}  {f['format']}  {f['bytes'] / 1e6:.0f} MB  {f['packets']} packets", file=out)
    by = {e["name"]: e for e in res}
    rows = []
    for e in res:
        p = by.get(PROBE_FOR_FILE.get(e["file"], ""))
        vs = round(e["pps"] / p["pps"], 3) if e.get("pps") and p and p.get("pps") else None
        rows.append([e["name"], e["file"], e["status"],
                     f"{e['median_wall_s']:.3f}" if "median_wall_s" in e else "-",
                     fmt_pps(e.get("pps")),
                     f"{e['median_rss_kib'] / 1024:.0f}" if "median_rss_kib" in e else "-",
                     fmt_x(vs), str(len(e["runs"]))])
    print("\nAll measurements (median wall; pps = packets / wall; RSS = peak):", file=out)
    print(table(rows, ["name", "file", "status", "wall s", "pkts/s", "RSS MiB", "/probe-flow", "runs"]), file=out)
    nl = [e for e in res if e["group"] == "netlens"]
    if any(e.get("pps") for e in nl):
        peers = [p for p in PEERS if by.get(p, {}).get("pps")]
        rows = []
        for e in nl:
            r = rep["ratios"].get(e["name"], {})
            if not e.get("pps"):
                rows.append([e["name"], e["status"]] + ["-"] * (2 + len(peers)))
                continue
            rows.append([e["name"], fmt_pps(e["pps"]), fmt_x(r.get("vs_probe_flow")),
                         fmt_x(r.get("vs_probe_flow_paired"))] +
                        [fmt_x(r.get(f"vs_{p}")) for p in peers])
        print("\nnetlens throughput ratios (netlens pps / other pps; >1 = netlens faster; "
              "peers only for rows on the main file; paired = median of the per-round ratios):",
              file=out)
        print(table(rows, ["netlens mode", "pkts/s", "probe-flow", "paired"] + peers), file=out)
    else:
        print("\n(no netlens figures in this run: " +
              ", ".join(sorted({e['status'] for e in nl})) + ")", file=out)
    gr = rep.get("growth") or growth(by)  # results saved before the growth table: computed
    if gr:
        fixed = next((g["harness_fixed_s"] for g in gr.values() if "harness_fixed_s" in g), None)
        print("\nGrowth from the small file to the main file (RSS: main / small peak; per packet: "
              "small / main wall per packet; paired = median of per-round ratios"
              + (f"; net = with the harness's own {fixed * 1000:.1f} ms per run (the `true` row) "
                 "taken off both walls" if fixed is not None else "") + "):", file=out)
        rows = [[k, fmt_x(g.get("rss_ratio")), fmt_x(g.get("rss_ratio_paired")),
                 fmt_x(g.get("per_packet_ratio")), fmt_x(g.get("per_packet_ratio_paired")),
                 fmt_x(g.get("per_packet_ratio_net")), fmt_x(g.get("per_packet_ratio_net_paired"))]
                for k, g in gr.items()]
        print(table(rows, ["mode", "RSS", "paired", "per packet", "paired", "net", "paired"]), file=out)
    bad = [e for e in res if e["status"] not in ("ok", "skipped")]
    for e in bad:
        print(f"  note: {e['name']}: {e['status']}  {e.get('note', '')}", file=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work")
    ap.add_argument("--out")
    ap.add_argument("--show")
    a = ap.parse_args()
    if a.show:
        with open(a.show) as f:
            show(json.load(f))
        return
    rep = build(a.work)
    with open(a.out, "w") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    show(rep)


if __name__ == "__main__":
    main()

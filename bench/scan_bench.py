#!/usr/bin/env python3
"""`mamorictl scan` end to end over the OTRF recordings, with the page cache under control.

Writes every line of the OTRF zips (<data>/otrf/**/*.zip, JSON lines; sorted, members in
order) into one NDJSON file, once (kept in --work and reused while the zips hold the same
members, whatever their mtimes; a new one replaces the older ones of the same --events
there), then runs

  mamorictl scan --rules <data>/sigma/rules --rules <data>/sigma/rules-emerging-threats
                 --rules <data>/sigma/rules-threat-hunting --quiet FILE

--runs times and prints each run's summary line and the medians: events/s per core (the
scan thread's CPU plus the read-ahead thread's), wall seconds, and both threads' CPU.

  bench/scan_bench.py [--build build/release] [--data ../shared/data] [--work DIR]
                      [--runs 5] [--cache warm|cold] [--events N] [--json]

--cache warm (the default): the file is read right before each run, so that the figure is
  the scan's and not the disk's. On this machine type the VM's DAMON reclaim drops file
  pages nobody touched for a minute or so, and reading them back costs the reading thread
  CPU: runs minutes apart measured the page cache as much as the scan (docs/detection.md
  §10.16).
--cache cold: the file is dropped from the page cache before each run (posix_fadvise
  DONTNEED), as an input copied in and scanned once: the wall time shows what reading ahead
  on a second thread gives.
--events N: only the first N lines (a quicker run; the figure is then of those lines).
A zip that cannot be read (purplesharp_ad_playbook_I.zip is truncated) is named on stderr
and skipped.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SUMMARY = re.compile(r"scan: (\d+) events \((\d+) rejected\) from \d+ files, (\d+) alerts, ([0-9.]+) s, \d+ events/s; "
                     r"CPU ([0-9.]+) s \(([0-9.]+) s scanning, ([0-9.]+) s reading ahead\), (\d+) events/s per core")


def otrf_lines(data, work, limit):
    """The NDJSON file of the OTRF lines (built once per set of zips and limit)."""
    zips = sorted(glob.glob(os.path.join(data, "otrf", "**", "*.zip"), recursive=True))
    if not zips:
        raise SystemExit("scan_bench: no OTRF zips under %s" % os.path.join(data, "otrf"))
    # Keyed by the zips' contents as their central directories give them (each member's name,
    # size and CRC-32), not by mtimes: a fresh copy of the same data reuses the file.
    key = hashlib.sha256()
    for z in zips:
        key.update(("%s %d\n" % (os.path.relpath(z, data), os.path.getsize(z))).encode())
        try:
            with zipfile.ZipFile(z) as zf:
                for info in zf.infolist():
                    key.update(("%s %d %08x\n" % (info.filename, info.file_size, info.CRC)).encode())
        except (zipfile.BadZipFile, OSError):
            pass  # named (and skipped) when the file is written
    which = "all" if limit is None else str(limit)
    path = os.path.join(work, "otrf-%s-%s.jsonl" % (which, key.hexdigest()[:16]))
    if os.path.exists(path):
        return path
    os.makedirs(work, exist_ok=True)
    # 1.4 GB each: one file per --events value is kept (and none of the older naming's)
    stale = re.compile(r"otrf-(%s-)?[0-9a-f]{16}\.jsonl(\.tmp)?$" % re.escape(which))
    for name in os.listdir(work):
        if stale.match(name):
            os.remove(os.path.join(work, name))
    lines = 0
    with open(path + ".tmp", "wb") as out:
        for z in zips:
            if limit is not None and lines >= limit:
                break
            try:
                with zipfile.ZipFile(z) as zf:
                    for name in zf.namelist():
                        if name.endswith("/"):
                            continue
                        with zf.open(name) as f:
                            for line in f:
                                if limit is not None and lines >= limit:
                                    break
                                if not line.strip():
                                    continue
                                out.write(line if line.endswith(b"\n") else line + b"\n")
                                lines += 1
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                print("scan_bench: %s: skipped: %s" % (os.path.relpath(z, data), e), file=sys.stderr)
    os.replace(path + ".tmp", path)
    print("scan_bench: %s: %d lines" % (path, lines), file=sys.stderr)
    return path


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def drop(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_once(ctl, sigma, path):
    args = [ctl, "scan", "--rules", os.path.join(sigma, "rules"), "--rules", os.path.join(sigma, "rules-emerging-threats"),
            "--rules", os.path.join(sigma, "rules-threat-hunting"), "--quiet", path]
    p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=3600)
    m = SUMMARY.search(p.stderr)
    if p.returncode not in (0, 1) or not m:  # 1: some lines are not JSON (the OTRF files hold a few)
        raise SystemExit("scan_bench: mamorictl scan failed (exit %d): %s" % (p.returncode, p.stderr[-2000:]))
    return {"events": int(m.group(1)), "rejected": int(m.group(2)), "alerts": int(m.group(3)),
            "wall_s": float(m.group(4)), "cpu_s": float(m.group(5)), "scan_cpu_s": float(m.group(6)),
            "ahead_cpu_s": float(m.group(7)), "per_core": int(m.group(8)), "line": m.group(0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--data", default=os.environ.get("MAMORI_DATA_DIR", os.path.join(ROOT, "../shared/data")))
    ap.add_argument("--work", default=os.path.join("/tmp", "mamori-scan-bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cache", choices=("warm", "cold"), default="warm")
    ap.add_argument("--events", type=int, default=None, help="only the first N lines")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs: at least 1")
    if args.events is not None and args.events < 1:
        ap.error("--events: at least 1")
    ctl = os.path.join(args.build, "cli", "mamorictl")
    if not os.access(ctl, os.X_OK):
        raise SystemExit("scan_bench: %s: not built (scripts/build.sh release)" % ctl)
    path = otrf_lines(args.data, args.work, args.events)
    runs = []
    for i in range(args.runs):
        (warm if args.cache == "warm" else drop)(path)
        r = run_once(ctl, os.path.join(args.data, "sigma"), path)
        runs.append(r)
        if not args.json:
            print("run %d (%s cache): %s" % (i + 1, args.cache, r["line"]))
    med = {k: statistics.median(r[k] for r in runs) for k in ("per_core", "wall_s", "cpu_s", "scan_cpu_s", "ahead_cpu_s")}
    if args.json:
        print(json.dumps({"cache": args.cache, "file": path, "runs": runs, "median": med}))
    else:
        print("median of %d (%s cache): %.0f events/s per core, %.3f s wall, CPU %.3f s (%.3f s scanning, %.3f s "
              "reading ahead); %d events, %d alerts" % (len(runs), args.cache, med["per_core"], med["wall_s"],
                                                       med["cpu_s"], med["scan_cpu_s"], med["ahead_cpu_s"],
                                                       runs[0]["events"], runs[0]["alerts"]))


if __name__ == "__main__":
    main()

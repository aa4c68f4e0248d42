#!/usr/bin/env python3
"""Event-to-alert latency inside the live server, and what the rule set costs to build.

Starts a fresh development node with the whole SigmaHQ rule set (rules, rules-emerging-
threats, rules-threat-hunting), records the rule set's load and compile time (server log)
and the server's memory before and after the build (/proc: RSS and peak), then replays the
OTRF recordings from simulated agents over mutual TLS at a steady rate, and measures, per
alert, the time from the server receiving the batch to the alert being written:

  histogram  mamori_detect_alert_latency_seconds (batch received -> alert durable), p50/p99
             interpolated inside its buckets
  records    each alert's `created` (set just before its write) minus its `received` (the
             batch's receive time), exact to the microsecond, p50/p99/max

  bench/alert_latency.py [--build build/release] [--agents 20] [--rate 5000] [--seconds 60]
                         [--runs 1] [--no-sync] [--correlations N] [--events otrf|model]

--events model sends the simulator's own activity model instead (ECS events, the shape our
agents send: process starts with unique command lines, network, file, DNS, registry): few or
no alerts, but the detection thread CPU per event ("detection ... µs/event") is the figure for
sizing a fleet of ECS agents.

--correlations N adds N Sigma correlation rules (docs/detection.md §11.6) over base rules that
fire on OTRF, grouped by host.name, with `generate: true` (the base rules keep alerting, so the
single-event workload is unchanged), and reports the latency of the correlation alerts apart:
created minus the receive time of the batch whose match completed the correlation.

The latency includes the store's group commit of the batch (alerts wait until the events
they point at are durable), so store.sync (fsync per commit, the default) is part of it. Each
run first writes back what other programs left dirty in the page cache (sync(2)): on ext4 a
commit's fsync waits for the journal, and a journal commit that follows a large write
elsewhere on the filesystem (bench/scan_bench.py's 1.4 GB file) carries its data — ~30 s
after such a write (the kernel's dirty_expire_centisecs) one alert batch waited 415 ms
(docs/detection.md §10.26).
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def wait_log(path, pattern, timeout=300, start=0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            text = f.read()[start:]
        m = re.search(pattern, text)
        if m:
            return m
        time.sleep(0.05)
    raise RuntimeError("no %r in %s" % (pattern, path))


class Api:
    def __init__(self, d, port):
        self.base = "https://127.0.0.1:%d" % port
        self.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        self.key = open(os.path.join(d, "admin.key")).read().strip()

    def get(self, path, auth=True):
        req = urllib.request.Request(self.base + path)
        if auth:
            req.add_header("Authorization", "Bearer " + self.key)
        with urllib.request.urlopen(req, context=self.ctx, timeout=120) as r:
            return r.read().decode()

    def metrics(self):
        out = {}
        for line in self.get("/metrics", auth=False).splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def alerts(self):
        out, cursor = [], None
        while True:
            q = {"limit": 10000}
            if cursor:
                q["cursor"] = cursor
            r = json.loads(self.get("/v1/alerts?" + urllib.parse.urlencode(q)))
            out += r["alerts"]
            cursor = r.get("cursor")
            if not cursor:
                return out


def rfc3339_us(s):
    # 2026-11-26T00:55:38.513280Z
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    import calendar
    return calendar.timegm(t) * 1000000 + int(s[20:26])


def scaled(v, k):
    return None if v is None else v * k


def hist_quantile(m, q):
    buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1)) if 'le="+Inf"' not in k else float("inf"), v)
                     for k, v in m.items() if k.startswith("mamori_detect_alert_latency_seconds_bucket"))
    total = buckets[-1][1]
    if not total:
        return None
    want, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= want:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (want - prev_n) / max(n - prev_n, 1)
        prev_le, prev_n = le, n
    return prev_le


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else None


# SigmaHQ rules that fire most on the OTRF recordings (mamorictl scan --rule-stats)
OTRF_FIRING = ["64e8e417-c19a-475a-8d19-98ea705394cc", "0f920ebe-7aea-4c54-b202-9aa0c609cfe5",
               "93ff0ceb-e0ef-4586-8cd8-a6c277d738e3", "0badd08f-c6a3-4630-90d3-6875cca440be",
               "12ba6a38-adb3-4d6b-91ba-a7fb248e3199", "250ae82f-736e-4844-a68b-0b5e8cc887da",
               "1f21ec3f-810d-4b0e-8045-322202e22b4b", "166e9c50-8cd9-44af-815d-d1f0c0e90dde",
               "16a4c7b3-4681-49d0-8d58-3e9b796dcb43", "c3e5c1b1-45e9-4632-b242-27939c170239",
               "7d0d0329-0ef1-4e84-a9f5-49500f9d7c6c", "a1a144b7-5c9b-4853-a559-2172be8d4a03",
               "eeb2e3dc-c1f4-40dd-9bd5-149ee465ad50", "69aeb277-f15f-4d2d-b32a-55e883609563"]


def correlation_rules(n):
    docs = []
    for i in range(n):
        a, b, c = (OTRF_FIRING[(i + k) % len(OTRF_FIRING)] for k in range(3))
        head = "title: bench correlation %d\nlevel: medium\ngenerate: true\ncorrelation:\n" % i
        kind = i % 4
        if kind == 0:
            body = "    type: event_count\n    rules: ['%s']\n    group-by: [host.name]\n    timespan: 10m\n" \
                   "    condition: {gte: 5}\n" % a
        elif kind == 1:
            body = "    type: value_count\n    rules: ['%s']\n    group-by: [host.name]\n    timespan: 1h\n" \
                   "    condition: {field: Image, gte: 3}\n" % a
        elif kind == 2:
            body = "    type: temporal_ordered\n    rules: ['%s', '%s']\n    group-by: [host.name]\n" \
                   "    timespan: 5m\n" % (a, b)
        else:
            body = "    type: temporal\n    rules: ['%s', '%s', '%s']\n    group-by: [host.name]\n" \
                   "    timespan: 30m\n" % (a, b, c)
        docs.append(head + body)
    return "---\n".join(docs)


def run_once(args, data):
    os.sync()  # other programs' dirty pages, not this run's, would be in its fsyncs (see above)
    d = tempfile.mkdtemp(prefix="mamori-alert-bench-")
    ingest_port, api_port = free_port(), free_port()
    log_path = os.path.join(d, "mamorid.log")
    rules = []
    for sub in ("rules", "rules-emerging-threats", "rules-threat-hunting"):
        rules += ["--rules", os.path.join(data, "sigma", sub)]
    if args.correlations:
        cdir = os.path.join(d, "correlations")
        os.makedirs(cdir)
        with open(os.path.join(cdir, "bench_correlations.yml"), "w") as f:
            f.write(correlation_rules(args.correlations))
        rules += ["--rules", cdir]
    cmd = [os.path.join(args.build, "server/mamorid"), "--dev", d, "--ingest-port", str(ingest_port), "--api-port",
           str(api_port), "--set", "api.rate_limit_per_key=0"] + rules
    if args.no_sync:
        cmd += ["--set", "store.sync=false"]
    log = open(log_path, "w")
    srv = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        wait_log(log_path, r"ready ingest_port")
        time.sleep(0.3)
        rss_before = proc_status(srv.pid, "VmRSS")
        m = wait_log(log_path, r"rule set loaded generation=\d+ rules=(\d+) correlations=\d+ rejected=(\d+) .*load_ms=(\d+) "
                               r"compile_ms=(\d+) databases=(\d+) patterns=(\d+) database_mib=([0-9.]+)")
        time.sleep(0.5)
        build = {"rules": int(m.group(1)), "rejected": int(m.group(2)), "load_ms": int(m.group(3)),
                 "compile_ms": int(m.group(4)), "databases": int(m.group(5)), "patterns": int(m.group(6)),
                 "database_mib": float(m.group(7)),
                 "rss_before_mib": rss_before / 1048576, "rss_after_mib": proc_status(srv.pid, "VmRSS") / 1048576,
                 "rss_peak_mib": proc_status(srv.pid, "VmHWM") / 1048576}
        api = Api(d, api_port)
        sim = [os.path.join(args.build, "bench/mamori-agent-sim"), "--dev", d, "--agents", str(args.agents),
               "--rate", str(args.rate), "--duration", str(args.seconds)]
        if args.events == "otrf":
            sim += ["--replay"] + sorted(glob.glob(os.path.join(data, "otrf", "**", "*.zip"), recursive=True))
        p = subprocess.run(sim, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=args.seconds + 600)
        if p.returncode != 0:
            raise RuntimeError("simulator failed: " + p.stderr[-2000:])
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        deadline = time.time() + 300
        while time.time() < deadline:
            mt = api.metrics()
            if mt["mamori_detect_events_evaluated_total"] >= mt["mamori_ingest_events_accepted_total"] and \
                    mt["mamori_detect_pending_batches"] == 0:
                break
            time.sleep(0.2)
        alerts = api.alerts()
        lat = [(rfc3339_us(a["created"]) - rfc3339_us(a["received"])) / 1000.0 for a in alerts]
        corr_lat = [(rfc3339_us(a["created"]) - rfc3339_us(a["received"])) / 1000.0 for a in alerts if "correlation" in a]
        events = mt["mamori_detect_events_evaluated_total"]
        result = {
            "build": build,
            "events": int(events), "sent": summary.get("sent"), "acked": summary.get("acked"),
            "alerts": len(alerts),
            "eval_us_per_event": mt["mamori_detect_eval_seconds_sum"] / max(events, 1) * 1e6,
            "histogram_ms": {"p50": scaled(hist_quantile(mt, 0.5), 1000), "p99": scaled(hist_quantile(mt, 0.99), 1000),
                             "mean": mt["mamori_detect_alert_latency_seconds_sum"] /
                             max(mt["mamori_detect_alert_latency_seconds_count"], 1) * 1000},
            "records_ms": {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat) if lat else None},
            "correlation_alerts": len(corr_lat),
            "correlation_records_ms": {"p50": pct(corr_lat, 0.5), "p99": pct(corr_lat, 0.99),
                                       "max": max(corr_lat) if corr_lat else None},
            "correlation_metrics": {k: v for k, v in mt.items() if k.startswith("mamori_detect_correlation")},
            "ack_ms_mean": mt["mamori_ingest_ack_latency_seconds_sum"] / max(mt["mamori_ingest_ack_latency_seconds_count"], 1)
            * 1000,
        }
        return result
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(120)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--data", default=os.environ.get("MAMORI_DATA_DIR", os.path.join(ROOT, "../shared/data")))
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--rate", type=int, default=5000, help="events/s over all agents")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-sync", action="store_true", help="store.sync=false (no fsync per group commit)")
    ap.add_argument("--correlations", type=int, default=0, help="add N correlation rules (generate: true)")
    ap.add_argument("--events", choices=("otrf", "model"), default="otrf",
                    help="replay the OTRF recordings (winlog), or the simulator's activity model (ECS)")
    args = ap.parse_args()
    runs = [run_once(args, args.data) for _ in range(args.runs)]

    def med(f):
        vals = [f(r) for r in runs if f(r) is not None]
        return statistics.median(vals) if vals else None

    out = {"runs": runs, "median": {
        "compile_ms": med(lambda r: r["build"]["compile_ms"]), "load_ms": med(lambda r: r["build"]["load_ms"]),
        "rss_delta_mib": med(lambda r: r["build"]["rss_after_mib"] - r["build"]["rss_before_mib"]),
        "rss_peak_mib": med(lambda r: r["build"]["rss_peak_mib"]),
        "latency_hist_p50_ms": med(lambda r: r["histogram_ms"]["p50"]),
        "latency_hist_p99_ms": med(lambda r: r["histogram_ms"]["p99"]),
        "latency_records_p50_ms": med(lambda r: r["records_ms"]["p50"]),
        "latency_records_p99_ms": med(lambda r: r["records_ms"]["p99"]),
        "latency_correlation_p50_ms": med(lambda r: r["correlation_records_ms"]["p50"]),
        "latency_correlation_p99_ms": med(lambda r: r["correlation_records_ms"]["p99"]),
        "correlation_alerts": med(lambda r: r["correlation_alerts"]),
        "alerts": med(lambda r: r["alerts"]), "events": med(lambda r: r["events"]),
        "eval_us_per_event": med(lambda r: r["eval_us_per_event"])}}
    print(json.dumps(out))
    m = out["median"]
    print("rule set: %d rules, load %.1f s + compile %.1f s, %.1f MiB of databases; server RSS +%.0f MiB (peak %.0f MiB)"
          % (runs[0]["build"]["rules"], m["load_ms"] / 1000, m["compile_ms"] / 1000, runs[0]["build"]["database_mib"],
             m["rss_delta_mib"], m["rss_peak_mib"]), file=sys.stderr)
    def ms(v):
        return "n/a" if v is None else "%.1f ms" % v

    print("event-to-alert: p50 %s, p99 %s (histogram, to durable); p50 %s, p99 %s (records, to write); %d alerts "
          "from %d events; detection %.2f µs/event (thread CPU)"
          % (ms(m["latency_hist_p50_ms"]), ms(m["latency_hist_p99_ms"]), ms(m["latency_records_p50_ms"]),
             ms(m["latency_records_p99_ms"]), m["alerts"], m["events"], m["eval_us_per_event"]), file=sys.stderr)
    if args.correlations:
        print("correlation alerts: %s, event-to-alert p50 %s ms, p99 %s ms (records)"
              % (m["correlation_alerts"], m["latency_correlation_p50_ms"], m["latency_correlation_p99_ms"]),
              file=sys.stderr)


if __name__ == "__main__":
    main()

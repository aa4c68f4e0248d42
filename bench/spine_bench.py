#!/usr/bin/env python3
"""Capacity figures of the ingest → store spine, measured with the real binaries on this
machine (server and simulator share it). Each scenario starts a fresh development node,
runs mamori-agent-sim against it, and reads the server's CPU time and memory from /proc
(the simulator's own CPU is excluded). Repeats each scenario and reports the median.

  bench/spine_bench.py [--build build/release] [--runs 3] [--only throughput,latency,storage,idle]

Scenarios
  throughput  N agents (default 1000) send as fast as acks allow: sustained events/s,
              server CPU per event (µs), ack latency.
  latency     the same agents at 50% of the measured throughput (or --rate R): ack p50/p99.
  storage     OTRF replay (all recordings), then compaction: stored bytes per event.
  idle        10,000 idle connections (HELLO + heartbeats): server RSS per connection.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def thread_cpu_seconds(pid):
    """CPU seconds per thread role: the thread name without its trailing number
    ("ingest-0", "ingest-1" → "ingest"). Threads that ended are not counted."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1].rstrip("0123456789").rstrip("-_") or "?"
        fields = rest.split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def proc_rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE


class Node:
    def __init__(self, build, sets=()):
        self.dir = tempfile.mkdtemp(prefix="mamori-bench-")
        self.port = free_port()
        args = [os.path.join(build, "server/mamorid"), "--dev", self.dir, "--ingest-port", str(self.port),
                "--api-port", str(free_port())]
        for s in sets:
            args += ["--set", s]
        self.log = open(os.path.join(self.dir, "mamorid.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        for _ in range(200):
            if "ready ingest_port" in open(self.log.name).read():
                break
            time.sleep(0.05)
        else:
            raise SystemExit("mamorid did not start:\n" + open(self.log.name).read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def sim(build, node, *args):
    cmd = [os.path.join(build, "bench/mamori-agent-sim"), "--dev", node.dir] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("simulator failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def throughput(build, agents, events_per_agent, sets):
    node = Node(build, sets)
    try:
        cpu0, t0 = proc_cpu_seconds(node.proc.pid), time.time()
        th0 = thread_cpu_seconds(node.proc.pid)
        s = sim(build, node, "--agents", agents, "--events-per-agent", events_per_agent, "--threads", 1)
        cpu = proc_cpu_seconds(node.proc.pid) - cpu0
        th1 = thread_cpu_seconds(node.proc.pid)
        by_thread = {k: round((v - th0.get(k, 0.0)) * 1e6 / s["acked"], 2) for k, v in sorted(th1.items())
                     if v - th0.get(k, 0.0) > 0}
        rss = proc_rss_bytes(node.proc.pid)
        node.stop()
        return {"events": s["acked"], "seconds": s["seconds"], "events_per_second": s["acked"] / s["seconds"],
                "server_cpu_us_per_event": cpu * 1e6 / s["acked"], "server_cpu_cores": cpu / (time.time() - t0),
                "ack_p50_ms": s["ack_latency_us"]["p50"] / 1000, "ack_p99_ms": s["ack_latency_us"]["p99"] / 1000,
                "sim_cpu_seconds": s.get("cpu_seconds"), "server_rss_mib": rss / 2**20,
                "server_cpu_us_per_event_by_thread": by_thread}
    finally:
        node.cleanup()


def latency(build, agents, rate, seconds, sets):
    node = Node(build, sets)
    try:
        s = sim(build, node, "--agents", agents, "--rate", int(rate), "--duration", seconds, "--threads", 1)
        node.stop()
        return {"rate": rate, "events_per_second": s["acked"] / s["seconds"],
                "ack_p50_ms": s["ack_latency_us"]["p50"] / 1000, "ack_p99_ms": s["ack_latency_us"]["p99"] / 1000,
                "ack_p999_ms": s["ack_latency_us"]["p999"] / 1000}
    finally:
        node.cleanup()


def storage(build, data, agents, sets):
    zips = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(data, "otrf")) for f in fs
                  if f.endswith(".zip"))
    node = Node(build, sets)
    try:
        # about the size of the corpus (~560k events), spread over the agents at different offsets
        s = sim(build, node, "--agents", agents, "--format", "winlog", "--replay", *zips,
                "--events-per-agent", 560000 // agents)
        node.stop()
        out = subprocess.run([os.path.join(build, "cli/mamorictl"), "store", "stats", "--dev", node.dir, "--compact"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        st = json.loads(out)
        st["replayed"] = s["acked"]
        return st
    finally:
        node.cleanup()


def idle(build, agents, seconds, sets):
    node = Node(build, sets)
    try:
        base = proc_rss_bytes(node.proc.pid)
        p = subprocess.Popen([os.path.join(build, "bench/mamori-agent-sim"), "--dev", node.dir, "--agents", str(agents),
                              "--idle", "--duration", str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        peak = base
        deadline = time.time() + seconds + 120
        while p.poll() is None and time.time() < deadline:
            peak = max(peak, proc_rss_bytes(node.proc.pid))
            time.sleep(0.5)
        out, err = p.communicate(timeout=120)
        s = json.loads(out.strip().splitlines()[-1])
        node.stop()
        return {"agents": agents, "connected": s.get("connected_at_end", s["agents"]),
                "server_rss_base_mib": base / 2**20, "server_rss_peak_mib": peak / 2**20,
                "server_rss_per_connection_kib": (peak - base) / agents / 1024}
    finally:
        node.cleanup()


def median_of(runs):
    keys = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs) if isinstance(runs[0][k], (int, float)) else runs[0][k]
            for k in keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--data", default=os.environ.get("MAMORI_DATA_DIR", os.path.join(ROOT, "../shared/data")))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--events-per-agent", type=int, default=2000)
    ap.add_argument("--idle-agents", type=int, default=10000)
    ap.add_argument("--only", default="throughput,latency,storage,idle")
    ap.add_argument("--rate", type=float, help="latency scenario: total events/s to offer (default: half the "
                    "measured throughput; given, the latency scenario runs without the throughput one)")
    ap.add_argument("--set", action="append", default=[], help="server config override, e.g. store.sync=false")
    a = ap.parse_args()
    only = set(a.only.split(","))
    report = {"machine": {"cpus": os.cpu_count()}, "server_overrides": a.set}
    if "throughput" in only or ("latency" in only and not a.rate):
        runs = [throughput(a.build, a.agents, a.events_per_agent, a.set) for _ in range(a.runs)]
        report["throughput"] = {"median": median_of(runs), "runs": runs}
        print("throughput: %s" % json.dumps(report["throughput"]["median"]), file=sys.stderr)
    if "latency" in only:
        rate = a.rate or report["throughput"]["median"]["events_per_second"] / 2
        runs = [latency(a.build, a.agents, rate, 30, a.set) for _ in range(a.runs)]
        report["latency_at_half_load"] = {"median": median_of(runs), "runs": runs}
        print("latency: %s" % json.dumps(report["latency_at_half_load"]["median"]), file=sys.stderr)
    if "storage" in only:
        report["storage_otrf"] = storage(a.build, a.data, 20, a.set)
        print("storage: %s" % json.dumps(report["storage_otrf"]), file=sys.stderr)
    if "idle" in only:
        report["idle"] = idle(a.build, a.idle_agents, 60, a.set)
        print("idle: %s" % json.dumps(report["idle"]), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Mamori through Kafka, measured with the real binaries and a real broker on this machine
(broker, mamorid processes and simulator share it): the inputs of the capacity model in
docs/scaling.md. Starts its own broker (deploy/kafka-dev.sh) and stops it at the end.

  bench/kafka_bench.py [--build build/release] [--runs 3] [--agents 200] [--events-per-agent 5000]
                       [--only compare,roles,latency] [--rules DIR]...

Scenarios (each repeated --runs times, medians reported)
  compare  one process with every role, the same agents and events, embedded bus and then
           Kafka back to back in the same run: acked events/s, stored events/s (until the
           store group has everything), server CPU µs per event; the Kafka/embedded ratio.
  roles    the roles apart, one at a time, to cost each one alone: an ingest process with
           nothing consuming (the producer alone: acked events/s, CPU µs/event of ingest),
           then a store process draining that topic (consumer alone), then a detect process
           draining it with the rules (--rules, default SigmaHQ rules/windows).
  latency  ack latency p50/p99 at a steady offered rate (--rate, default 10,000 events/s
           from the agents for 20 s), embedded and Kafka.
CPU is the mamorid processes' own (utime+stime from /proc), never the broker's or the
simulator's: the broker's CPU is reported apart (its JVM)."""
import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PARTITIONS = 12


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def broker_pid(kdir):
    try:
        with open(os.path.join(kdir, "broker.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Node:
    """One mamorid --dev process (roles, bus, extra --set)."""

    def __init__(self, build, base, name, roles="ingest,detect,store,api,rulesync", bus=None, sets=(), rules=()):
        self.dir = os.path.join(base, name)
        self.api_port = free_port()
        args = [os.path.join(build, "server/mamorid"), "--dev", self.dir, "--ingest-port", str(free_port()),
                "--api-port", str(self.api_port), "--roles", roles]
        if bus:
            args += ["--bus", "kafka", "--kafka-bootstrap", bus]
        for s in sets:
            args += ["--set", s]
        for r in rules:
            args += ["--rules", r]
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "mamorid.log")
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if "ready ingest_port" in open(self.log).read():
                break
            if self.proc.poll() is not None:
                raise SystemExit("mamorid exited:\n" + open(self.log).read()[-3000:])
            time.sleep(0.1)
        else:
            raise SystemExit("mamorid did not start:\n" + open(self.log).read()[-3000:])

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def metrics(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % self.api_port, context=ctx, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("mamori_"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def caught_up(self, group):
        m = self.metrics()
        tag = 'group="%s"' % group

        def total(name):
            return sum(v for k, v in m.items() if k.startswith("mamori_bus_kafka_" + name + "{") and tag in k)
        return total("assigned_partitions") == PARTITIONS and total("consumer_lag_messages") == 0 and \
            total("consumer_lag_unknown_partitions") == 0

    def wait_caught_up(self, groups, timeout=1800):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.caught_up(g) for g in groups):
                return time.time()
            time.sleep(0.2)
        raise SystemExit("%s did not catch up" % self.dir)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(300)


def sim(build, node, *args):
    cmd = [os.path.join(build, "bench/mamori-agent-sim"), "--dev", node.dir] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("simulator failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def kafka_sets(name):
    return ["bus.kafka.topic=%s.events" % name, "bus.kafka.group_prefix=%s-" % name,
            "bus.kafka.alerts_topic=%s.alerts" % name]


def run_compare(a, base, bootstrap, n):
    out = {}
    for kind in ("embedded", "kafka"):
        name = "cmp%d%s" % (n, kind[0])
        node = Node(a.build, base, name, bus=bootstrap if kind == "kafka" else None,
                    sets=kafka_sets(name) if kind == "kafka" else ())  # no rules: the cost of the bus
        bpid = broker_pid(a.kafka_dir)
        b0 = cpu_seconds(bpid) if bpid else 0
        c0, t0 = node.cpu(), time.time()
        s = sim(a.build, node, "--agents", a.agents, "--events-per-agent", a.events_per_agent, "--threads", 1)
        acked_at = time.time()
        if kind == "kafka":
            stored_at = node.wait_caught_up([name + "-store", name + "-detect"])
        else:
            stored_at = acked_at  # the embedded bus acks once the store has it
        cpu = node.cpu() - c0
        events = s["acked"]
        out[kind] = {"events": events, "acked_events_per_s": events / s["seconds"],
                     "stored_events_per_s": events / (s["seconds"] + stored_at - acked_at),
                     "server_cpu_us_per_event": cpu * 1e6 / events,
                     "broker_cpu_us_per_event": (cpu_seconds(bpid) - b0) * 1e6 / events if bpid else None,
                     "ack_p50_ms": s["ack_latency_us"]["p50"] / 1000, "ack_p99_ms": s["ack_latency_us"]["p99"] / 1000}
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)
    out["ratio_kafka_to_embedded_acked"] = out["kafka"]["acked_events_per_s"] / out["embedded"]["acked_events_per_s"]
    out["ratio_kafka_to_embedded_stored"] = out["kafka"]["stored_events_per_s"] / out["embedded"]["stored_events_per_s"]
    out["ratio_kafka_to_embedded_cpu"] = out["kafka"]["server_cpu_us_per_event"] / out["embedded"]["server_cpu_us_per_event"]
    return out


def drain(a, base, name, bootstrap, roles, group, rules=()):
    node = Node(a.build, base, name + "-" + roles, roles=roles, bus=bootstrap, sets=kafka_sets(name), rules=rules)
    while rules and "rule set loaded" not in open(node.log).read():  # compiling is not consuming
        time.sleep(0.05)
    c0, t0 = node.cpu(), time.time()
    done = node.wait_caught_up([group])
    cpu = node.cpu() - c0
    node.stop()
    return cpu, done - t0


def run_roles(a, base, bootstrap, n):
    name = "roles%d" % n
    ingest = Node(a.build, base, name + "-ingest", roles="ingest", bus=bootstrap, sets=kafka_sets(name))
    c0 = ingest.cpu()
    s = sim(a.build, ingest, "--agents", a.agents, "--events-per-agent", a.events_per_agent, "--threads", 1)
    ingest_cpu = ingest.cpu() - c0
    ingest.stop()
    events = s["acked"]
    store_cpu, store_s = drain(a, base, name, bootstrap, "store", name + "-store")
    detect_cpu, detect_s = drain(a, base, name, bootstrap, "detect", name + "-detect", a.rules)
    return {"events": events,
            "producer_alone_acked_events_per_s": events / s["seconds"],
            "ingest_cpu_us_per_event": ingest_cpu * 1e6 / events,
            "store_consumer_alone_events_per_s": events / store_s,
            "store_cpu_us_per_event": store_cpu * 1e6 / events,
            "detect_consumer_alone_events_per_s": events / detect_s,
            "detect_cpu_us_per_event": detect_cpu * 1e6 / events,
            "note": "consumer figures start once the process is ready (detect: its rules compiled) and include "
                    "joining the group"}


def run_latency(a, base, bootstrap, n):
    out = {}
    for kind in ("embedded", "kafka"):
        name = "lat%d%s" % (n, kind[0])
        node = Node(a.build, base, name, bus=bootstrap if kind == "kafka" else None,
                    sets=kafka_sets(name) if kind == "kafka" else ())
        s = sim(a.build, node, "--agents", a.agents, "--rate", a.rate, "--duration", 20, "--threads", 1)
        out[kind] = {"offered_events_per_s": a.rate, "acked_events_per_s": s["acked"] / s["seconds"],
                     "ack_p50_ms": s["ack_latency_us"]["p50"] / 1000, "ack_p99_ms": s["ack_latency_us"]["p99"] / 1000}
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)
    return out


def median_tree(runs):
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_tree([r[k] for r in runs]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(runs)
    return first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--data", default=os.environ.get("MAMORI_DATA_DIR", os.path.join(ROOT, "../shared/data")))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--events-per-agent", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--rules", action="append", default=None)
    ap.add_argument("--only", default="compare,roles,latency")
    a = ap.parse_args()
    if a.rules is None:
        a.rules = [os.path.join(a.data, "sigma/rules/windows")]
    only = set(a.only.split(","))
    base = tempfile.mkdtemp(prefix="mamori-kbench-")
    a.kafka_dir = os.path.join(base, "kafka")
    p = subprocess.run([os.path.join(ROOT, "deploy/kafka-dev.sh"), "start", a.kafka_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=900)
    if p.returncode != 0:
        raise SystemExit("broker: " + p.stdout + p.stderr)
    bootstrap = p.stdout.strip().splitlines()[-1].split("=", 1)[1]
    report = {"machine": {"cpus": os.cpu_count()}, "agents": a.agents, "events_per_agent": a.events_per_agent,
              "rules": a.rules, "runs": a.runs}
    try:
        for scenario, fn in (("compare", run_compare), ("roles", run_roles), ("latency", run_latency)):
            if scenario not in only:
                continue
            runs = [fn(a, base, bootstrap, i) for i in range(a.runs)]
            report[scenario] = {"median": median_tree(runs), "runs": runs}
            print("%s: %s" % (scenario, json.dumps(report[scenario]["median"])), file=sys.stderr)
    finally:
        subprocess.run([os.path.join(ROOT, "deploy/kafka-dev.sh"), "stop", a.kafka_dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

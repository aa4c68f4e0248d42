#!/usr/bin/env python3
"""Remote response under load (issue 7): how fast isolation is enforced with a fleet
connected, and how fast a backlog of queued actions drains when the fleet comes back.

Each run starts a fresh development node (`mamorid --dev`, default configuration:
store.sync true) and drives it with `mamori-agent-sim` over mutual TLS 1.3 on loopback,
server and simulator on the same machine; every agent acts for real on a shared sandbox
(`--sandbox`, isolation recorded as state — nftables per agent would need 1,000
namespaces).

  isolate   1,000 agents connected (1 event/s each as background traffic). `isolate` is
            POSTed to every agent — `paced` (--rate per second, one at a time) and `burst`
            (all of them from --clients concurrent API clients) — then `release` the same
            way. Latency of one action = the `succeeded` time in its history (when the
            server received the agent's RESULT saying it enforces the state) minus the
            client's clock just before its POST: p50/p99/max over the 1,000.
  drain     1,000 agents connect once (registered), go away; 10 actions per agent are
            queued (10,000: list_processes, list_dir, isolate, release, fetch_file of a
            4 KiB file); the agents reconnect. Drain time = the last final result minus the
            start of the simulator (connection set-up included), and minus the moment all
            1,000 were connected. Server CPU per action from /proc, in all (API reads of the
            bench included) and by thread role until every result was taken in ("mamorid"
            threads are the API's and the main thread).

  bench/response_bench.py [--build build/release] [--runs 3] [--agents 1000]
                          [--per-agent 10] [--rate 50] [--clients 8] [--only isolate,drain]

Prints one JSON line per run and scenario, then the medians.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu(pid):
    """CPU seconds per thread role ("ingest-0" and "ingest-1" count as "ingest")."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                text = f.read()
        except OSError:
            continue
        name = re.sub(r"-\d+$", "", text[text.index("(") + 1:text.rindex(")")])
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class Api:
    def __init__(self, d, port):
        self.base = "https://127.0.0.1:%d" % port
        self.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        self.key = open(os.path.join(d, "admin.key")).read().strip()
        self.local = threading.local()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def metric(self, name):
        req = urllib.request.Request(self.base + "/metrics")
        req.add_header("Authorization", "Bearer " + self.key)
        with urllib.request.urlopen(req, context=self.ctx, timeout=120) as r:
            m = re.search(r"^%s (\d+)" % re.escape(name), r.read().decode(), re.M)
        return int(m.group(1)) if m else 0

    def act(self, agent, action, args=None):
        st, rec = self.call("POST", "/v1/agents/%s/actions" % agent, {"action": action, "args": args or {}})
        if st != 201:
            raise RuntimeError("POST %s to %s: %d %r" % (action, agent, st, rec))
        return rec

    def action(self, aid):
        st, rec = self.call("GET", "/v1/actions/" + aid)
        if st != 200:
            raise RuntimeError("GET /v1/actions/%s: %d %r" % (aid, st, rec))
        return rec

    def online(self):
        st, r = self.call("GET", "/v1/agents")
        return sum(1 for a in r["agents"] if a.get("online"))


class Node:
    def __init__(self, build, workdir, sync=True):
        self.sync = sync
        self.dir = tempfile.mkdtemp(prefix="resp-bench-", dir=workdir)
        self.port, self.api_port = free_port(), free_port()
        self.log_path = os.path.join(self.dir, "mamorid.log")
        self.build = build
        self.proc = None

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([os.path.join(self.build, "server/mamorid"), "--dev", self.dir, "--ingest-port",
                                      str(self.port), "--api-port", str(self.api_port), "--set",
                                      "api.rate_limit_per_key=0", "--set", "store.sync=%s" % str(self.sync).lower()],
                                     stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if "ready ingest_port" in open(self.log_path, errors="replace").read():
                self.api = Api(self.dir, self.api_port)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("mamorid exited:\n" + open(self.log_path).read()[-3000:])
            time.sleep(0.05)
        raise RuntimeError("mamorid not ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Sim:
    """The simulator in the background, its progress lines followed."""

    def __init__(self, build, node, agents, sandbox, duration):
        cmd = [os.path.join(build, "bench/mamori-agent-sim"), "--dev", node.dir, "--agents", str(agents),
               "--duration", str(duration), "--rate", str(agents), "--progress-ms", "100", "--sandbox", sandbox,
               "--max-handshakes", "64", "--log-level", "info"]
        self.start_time = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.connected = self.results = 0
        self.all_connected_at = None
        self.agents = agents
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self):
        for line in self.proc.stderr:
            m = re.search(r"connected=(\d+)/\d+ .*results=(\d+)", line)
            if m:
                with self.lock:
                    self.connected, self.results = int(m.group(1)), int(m.group(2))
                    if self.connected >= self.agents and self.all_connected_at is None:
                        self.all_connected_at = time.time()

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if pred(self):
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("simulator exited while waiting for " + what)
            time.sleep(0.02)
        raise RuntimeError("timeout waiting for " + what)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=120)
        lines = [l for l in out.splitlines() if l.strip()]
        return json.loads(lines[-1]) if lines else {}


def make_sandbox(workdir):
    root = tempfile.mkdtemp(prefix="resp-bench-sandbox-", dir=workdir)
    for i in range(20):
        with open(os.path.join(root, "file-%02d.txt" % i), "wb") as f:
            f.write(os.urandom(4096))
    return os.path.realpath(root)


def wait_final(api, ids, timeout, clients=4):
    """Action records of every id once final (polled by `clients` concurrent readers)."""
    done, pending = {}, list(ids)
    deadline = time.time() + timeout
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        while pending and time.time() < deadline:
            still = []
            for aid, rec in zip(pending, ex.map(api.action, pending)):
                if rec["status"] in ("succeeded", "failed", "expired"):
                    done[aid] = rec
                else:
                    still.append(aid)
            pending = still
        if pending:
            time.sleep(0.2)
    if pending:
        raise RuntimeError("%d actions not final within %ss" % (len(pending), timeout))
    return done


def final_at(rec):
    return max(parse_time(h["at"]) for h in rec["history"] if h["status"] == rec["status"])


def isolate_round(api, agents, action, mode, rate, clients):
    """POSTs `action` to every agent; returns latencies (s) from just before each POST to the
    success the agent reported."""
    sent = {}

    def post(agent):
        t0 = time.time()
        rec = api.act(agent, action)
        sent[rec["id"]] = t0

    if mode == "paced":
        interval = 1.0 / rate
        next_t = time.time()
        for a in agents:
            now = time.time()
            if now < next_t:
                time.sleep(next_t - now)
            next_t += interval
            post(a)
    else:
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            list(ex.map(post, agents))
    recs = wait_final(api, list(sent), 120, clients)
    bad = [r for r in recs.values() if r["status"] != "succeeded"]
    if bad:
        raise RuntimeError("%d %s actions did not succeed, e.g. %r" % (len(bad), action, bad[0]))
    lat = [final_at(r) - sent[aid] for aid, r in recs.items()]
    server = [final_at(r) - parse_time(r["created"]) for r in recs.values()]
    return lat, server


def summarize(values):
    return {"p50_ms": round(pct(values, 50) * 1000, 1), "p99_ms": round(pct(values, 99) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1), "n": len(values)}


def run_isolate(args, workdir):
    node = Node(args.build, workdir, not args.no_sync).start()
    sandbox = make_sandbox(workdir)
    sim = None
    try:
        sim = Sim(args.build, node, args.agents, sandbox, 3600)
        sim.wait(lambda s: s.connected >= args.agents, 300, "agents connected")
        agents = ["sim-%05d" % i for i in range(args.agents)]
        deadline = time.time() + 60
        while node.api.online() < args.agents and time.time() < deadline:
            time.sleep(0.2)
        out = {"scenario": "isolate", "agents": args.agents, "sync": not args.no_sync}
        for mode in ("paced", "burst"):
            for action in ("isolate", "release"):
                lat, server = isolate_round(node.api, agents, action, mode, args.rate, args.clients)
                out["%s_%s" % (action, mode)] = summarize(lat)
                out["%s_%s_server" % (action, mode)] = summarize(server)
        s = sim.stop()
        sim = None
        out["sim_isolation_changes"] = s.get("response", {}).get("isolation_changes")
        return out
    finally:
        if sim:
            sim.stop()
        node.stop()
        node.remove()
        shutil.rmtree(sandbox, ignore_errors=True)


def run_drain(args, workdir):
    node = Node(args.build, workdir, not args.no_sync).start()
    sandbox = make_sandbox(workdir)
    sim = None
    try:
        # the fleet connects once, then goes away
        sim = Sim(args.build, node, args.agents, sandbox, 3600)
        sim.wait(lambda s: s.connected >= args.agents, 300, "agents connected")
        sim.stop()
        sim = None
        deadline = time.time() + 60
        while node.api.online() and time.time() < deadline:
            time.sleep(0.2)
        plan = [("list_processes", {}), ("list_dir", {"path": sandbox}), ("isolate", {}),
                ("list_dir", {"path": sandbox, "depth": 2}), ("release", {}), ("list_processes", {}),
                ("fetch_file", {"path": sandbox + "/file-00.txt", "max_bytes": 1 << 20}),
                ("list_dir", {"path": sandbox}), ("list_processes", {}),
                ("fetch_file", {"path": sandbox + "/file-01.txt", "max_bytes": 1 << 20})]
        jobs = [("sim-%05d" % i, plan[k % len(plan)]) for k in range(args.per_agent) for i in range(args.agents)]
        t_queue = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
            ids = list(ex.map(lambda j: node.api.act(j[0], j[1][0], j[1][1])["id"], jobs))
        queue_s = time.time() - t_queue
        cpu0 = cpu_seconds(node.proc.pid)
        threads0 = thread_cpu(node.proc.pid)
        results0 = node.api.metric("mamori_response_results_total")
        sim = Sim(args.build, node, args.agents, sandbox, 3600)
        sim.wait(lambda s: s.results >= len(ids), 900, "every queued action answered")
        seen_by_sim = time.time()
        # the server records results after the agent sent them: wait (cheaply, on the metric)
        # until it has taken in the running and the final result of every action, then read
        # every record, agents still connected
        deadline = time.time() + 900
        while node.api.metric("mamori_response_results_total") < results0 + 2 * len(ids):
            if time.time() > deadline:
                raise RuntimeError("the server did not take in every result")
            time.sleep(0.1)
        threads1 = thread_cpu(node.proc.pid)
        recs = wait_final(node.api, ids, 900, args.clients)
        cpu1 = cpu_seconds(node.proc.pid)
        start, all_connected = sim.start_time, sim.all_connected_at
        s = sim.stop()
        sim = None
        statuses = {}
        for r in recs.values():
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        last = max(final_at(r) for r in recs.values())
        return {"scenario": "drain", "agents": args.agents, "sync": not args.no_sync, "actions": len(ids), "statuses": statuses,
                "queue_seconds": round(queue_s, 2), "queue_posts_per_second": round(len(ids) / queue_s, 1),
                "drain_seconds_from_sim_start": round(last - start, 2),
                "drain_seconds_after_all_connected": round(last - all_connected, 2) if all_connected else None,
                "connect_seconds": round(all_connected - start, 2) if all_connected else None,
                "actions_per_second": round(len(ids) / (last - start), 1),
                "server_cpu_ms_per_action": round((cpu1 - cpu0) * 1000 / len(ids), 3),
                # until every result was taken in (before reading the 10,000 records back),
                # by thread role: the response service, ingest (TLS, frames), the store writer
                "thread_cpu_ms_per_action": {k: round((threads1.get(k, 0) - threads0.get(k, 0)) * 1000 / len(ids), 3)
                                             for k in ("response", "ingest", "store-writer", "mamorid")},
                "sim_results": s.get("response"), "sim_saw_all_after_s": round(seen_by_sim - start, 2)}
    finally:
        if sim:
            sim.stop()
        node.stop()
        node.remove()
        shutil.rmtree(sandbox, ignore_errors=True)


def median_of(runs, path):
    vals = []
    for r in runs:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--per-agent", type=int, default=10)
    ap.add_argument("--rate", type=float, default=50, help="paced isolate/release POSTs per second")
    ap.add_argument("--clients", type=int, default=8, help="concurrent API clients for burst and queueing")
    ap.add_argument("--only", default="isolate,drain")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--no-sync", action="store_true", help="store.sync=false (the default is true)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    scenarios = args.only.split(",")
    results = {"isolate": [], "drain": []}
    for i in range(args.runs):
        for sc in scenarios:
            r = run_isolate(args, args.workdir) if sc == "isolate" else run_drain(args, args.workdir)
            r["run"] = i + 1
            print(json.dumps(r), flush=True)
            results[sc].append(r)
    med = {}
    if results["isolate"]:
        for key in ("isolate_paced", "release_paced", "isolate_burst", "release_burst", "isolate_paced_server",
                    "isolate_burst_server"):
            med[key] = {m: median_of(results["isolate"], [key, m]) for m in ("p50_ms", "p99_ms", "max_ms")}
    if results["drain"]:
        for key in ("drain_seconds_from_sim_start", "drain_seconds_after_all_connected", "connect_seconds",
                    "actions_per_second", "server_cpu_ms_per_action", "queue_posts_per_second"):
            med[key] = median_of(results["drain"], [key])
        med["thread_cpu_ms_per_action"] = {k: median_of(results["drain"], ["thread_cpu_ms_per_action", k])
                                           for k in ("response", "ingest", "store-writer", "mamorid")}
    print(json.dumps({"medians_of_runs": args.runs, **med}), flush=True)


if __name__ == "__main__":
    sys.exit(main())

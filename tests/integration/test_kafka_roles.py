"""Roles as separate processes on a real Kafka broker (mamorid --roles, docs/scaling.md): one
ingest process (its resume points from its own ledger), two store shards (each owning half
of the partitions, its own RocksDB) and two detect workers (the group mamori-detect). Agents
send through ingest; every event is stored exactly once across the shards, each host on one
shard; every expected alert is raised exactly once, on the shard that holds its event. In mid-run one store shard and one detect worker are
killed with kill -9, and the ingest process as well: the detect group rebalances onto the
survivor, the store shard restarts on its own data and partitions, ingest restarts on its
ledger (no WELCOME below an ACK); the final counts are still exact.

Size: 200 agents x MAMORI_ROLES_EVENTS events (default 5,000, i.e. 1,000,000 events, the size the
scale-out issue asks for: about 1.5-2 minutes on a 2-core machine shared with the broker;
MAMORI_ROLES_EVENTS=1000 for a quicker local run)."""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from harness import MAMORICTL, KafkaBroker, Server, ctl, metrics, parse_sim, sim, stop_all, temp_dir

AGENTS = 200
EVENTS = int(os.environ.get("MAMORI_ROLES_EVENTS", "5000"))
PARTITIONS = 12
TOPIC = "roles.events"
PREFIX = "roles-"

RULE = """title: cmd.exe started
id: 7b0d6f3e-2a4c-4f7e-9c11-0c2b5e1d9a01
status: test
logsource:
  product: windows
  category: process_creation
detection:
  sel:
    Image|endswith: '\\\\cmd.exe'
  condition: sel
level: high
"""
MATCHING = r'process where event.type == "start" and process.executable : "*\\cmd.exe" | count'


@pytest.fixture(scope="module")
def broker():
    b = KafkaBroker(os.path.realpath(temp_dir("mamori-kafka-roles-")))
    try:
        yield b.start()
    finally:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


@pytest.fixture
def base():
    d = temp_dir("mamori-it-roles-")
    yield d
    if not os.environ.get("MAMORI_KEEP_TEST_DIRS"):
        shutil.rmtree(d, ignore_errors=True)


def node(base, name, roles, bootstrap, *extra):
    return Server(os.path.join(base, name), extra=["--roles", roles, "--bus", "kafka", "--kafka-bootstrap", bootstrap,
                                                    "--set", "bus.kafka.topic=" + TOPIC,
                                                    "--set", "bus.kafka.group_prefix=" + PREFIX,
                                                    "--set", "bus.kafka.alerts_topic=roles.alerts"] + list(extra))


def consumer_state(server, group):
    """(assigned partitions, lag, partitions of unknown end) of a process's consumers of group."""
    m = metrics(server.api_port, "mamori_bus_kafka_")
    tag = 'group="%s%s"' % (PREFIX, group)

    def total(name):
        return sum(v for k, v in m.items() if k.startswith("mamori_bus_kafka_" + name + "{") and tag in k)
    return total("assigned_partitions"), total("consumer_lag_messages"), total("consumer_lag_unknown_partitions")


def wait_until(what, predicate, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)


def caught_up(servers, group):
    states = [consumer_state(s, group) for s in servers]
    return sum(a for a, _, _ in states) == PARTITIONS and all(lag == 0 and unknown == 0 for _, lag, unknown in states)


def alert_ids(server):
    p = subprocess.run([MAMORICTL, "alerts", "--dev", server.dir, "--json", "--limit", "1000000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(l)["id"] for l in p.stdout.splitlines() if l.strip()]


def host_counts(data_dir):
    args = ["store", "lookup", "--data", data_dir, "--tenant", "default", "--field", "host.name"]
    for i in range(AGENTS):
        args += ["--value", "kr-%05d" % i]
    return ctl(*args)["by_value"]


def test_roles_as_processes_exactly_once_across_kill_9(broker, base):
    rules = os.path.join(base, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "cmd.yml"), "w") as f:
        f.write(RULE)
    ingest = node(base, "ingest", "ingest", broker.bootstrap)
    stores = [node(base, "store%d" % i, "store", broker.bootstrap, "--set", "bus.kafka.store_shards=2",
                   "--set", "bus.kafka.store_shard=%d" % i) for i in range(2)]
    detects = [node(base, "detect%d" % i, "detect", broker.bootstrap, "--rules", rules, "--set", "detect.threads=1")
               for i in range(2)]
    everyone = [ingest] + stores + detects
    run = None
    try:
        ingest.start(timeout=120)  # creates the topic
        assert "development node (kafka bus, ingest)" in ingest.log()
        for s in stores + detects:
            s.start(timeout=120)
        for i, st in enumerate(stores):
            wait_until("store shard %d to take its partitions" % i,
                       lambda: "store shard %d of 2 owns partitions [%s]" % (
                           i, ",".join(str(p) for p in range(i, PARTITIONS, 2))) in st.log(), 60)
        run = sim(ingest.dir, "--agents", AGENTS, "--events-per-agent", EVENTS, "--agent-prefix", "kr",
                  "--progress-ms", 200, "--timeout", 600, background=True)
        err_lines = []
        reader = threading.Thread(target=lambda: err_lines.extend(run.stderr), daemon=True)
        reader.start()

        def acked():
            n = 0
            for line in list(err_lines)[-5:]:
                if " acked=" in line:
                    n = max(n, int(line.split(" acked=")[1].split()[0]))
            return n
        total = AGENTS * EVENTS
        wait_until("a third of the events acked", lambda: acked() >= total // 3 or run.poll() is not None)
        assert acked() < total, "the run ended before the kill"
        stores[1].kill9()
        detects[1].kill9()
        # ingest too: its agents come back to a WELCOME from its ledger, never below an ACK
        ingest.kill9()
        ingest.start(timeout=120)
        # the detect group moves the dead worker's partitions to the survivor
        wait_until("the detect group to rebalance", lambda: consumer_state(detects[0], "detect")[0] == PARTITIONS)
        # a store shard owns its partitions: it restarts on its own data and resumes them
        stores[1].start(timeout=120)
        detects[1].start(timeout=120)
        out = run.stdout.read()
        run.wait(timeout=600)
        reader.join(timeout=10)
        s = parse_sim(run.returncode, out, "".join(err_lines))
        assert s["_rc"] == 0, s["_stderr"][-3000:]
        assert s["sent"] == total and s["acked"] == total and s["rejected"] == 0
        assert s["seq_regressions"] == 0, "a WELCOME went below an ACK the agent already had"
        # agents that had everything acked before the kill are done and do not come back
        assert s["reconnects"] > 0, "the agents should have reconnected after the ingest kill"
        wait_until("the store shards to catch up", lambda: caught_up(stores, "store"))
        wait_until("the detect group to catch up", lambda: caught_up(detects, "detect"))
        # every alert once: the detect workers send their alerts to the shard that holds the
        # triggering event (alert ids are deterministic: a batch detected twice, before and
        # after the rebalance, gives the same ids, and the shard keeps each id once)
        def shard_alerts():
            return [alert_ids(st) for st in stores]
        matching = sum(ctl("search", "--dev", st.dir, "--from", "2000-01-01T00:00:00Z", MATCHING)["count"]
                       for st in stores)
        wait_until("the alerts to reach the shards", lambda: sum(len(i) for i in shard_alerts()) >= matching, 60)
        ids = shard_alerts()
        print("alerts: expected %d, on the shards %s" % (matching, [len(i) for i in ids]))
        assert matching > 0 and sum(len(i) for i in ids) == matching
        assert not set(ids[0]) & set(ids[1]), "an alert on both shards"
        for i in ids:
            assert len(i) == len(set(i))
        assert all(alert_ids(d) == [] for d in detects), "a detect worker kept alerts of its own"
    finally:
        if run and run.poll() is None:
            run.kill()
        stop_all(everyone)
    # every event exactly once across the shards, each host whole on one shard
    counts = [ctl("store", "count", "--data", os.path.join(st.dir, "data"))["events"] for st in stores]
    assert sum(counts) == AGENTS * EVENTS, counts
    assert all(c > 0 for c in counts), counts
    per_shard = [host_counts(os.path.join(st.dir, "data")) for st in stores]
    for i in range(AGENTS):
        h = "kr-%05d" % i
        on = [c.get(h, 0) for c in per_shard]
        assert sorted(on) == [0, EVENTS], (h, on)

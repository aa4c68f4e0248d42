"""The development node on a real Kafka broker (mamorid --dev DIR --bus kafka --kafka-bootstrap
ADDR): simulated agents over mutual TLS, each batch one Kafka message, acked after the broker's
delivery report, stored by the consumer group mamori-store exactly once — also when some lines
are rejected (gaps in the event indexes travel through Kafka) and across kill -9 of mamorid in
mid-run (redelivered batches overwrite nothing twice; WELCOME never goes below an ACK the agents
already got; two detect consumers raise each alert once); and across a broker outage in mid-run, which is backpressure on the agents,
never loss. The broker is started by the test (deploy/kafka-dev.sh) and always stopped."""
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import MAMORICTL, Server, ctl, parse_sim, sim, temp_dir, unprivileged

SOURCE = os.environ.get("MAMORI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
KAFKA_DEV = os.path.join(SOURCE, "deploy/kafka-dev.sh")
AGENTS = 20
EVENTS = 5000
PARTITIONS = 12  # bus.kafka.partitions default: mamorid creates each test's topic

RULE = """title: cmd.exe started
id: 7b0d6f3e-2a4c-4f7e-9c11-0c2b5e1d9a01
status: test
logsource:
  product: windows
  category: process_creation
detection:
  sel:
    Image|endswith: '\\cmd.exe'
  condition: sel
level: high
"""


class Broker:
    def __init__(self, d):
        self.dir = d
        self.bootstrap = None

    def start(self):
        p = subprocess.run([KAFKA_DEV, "start", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=900)  # the first start on a machine downloads the broker
        assert p.returncode == 0, p.stdout + p.stderr
        line = p.stdout.strip().splitlines()[-1]
        assert line.startswith("bootstrap="), p.stdout
        addr = line.split("=", 1)[1]
        assert self.bootstrap in (None, addr), "a restarted broker keeps its address"
        self.bootstrap = addr
        return self

    def stop(self):
        subprocess.run([KAFKA_DEV, "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, check=True)


@pytest.fixture(scope="module")
def broker():
    b = Broker(os.path.realpath(temp_dir("mamori-kafka-bus-")))
    try:
        yield b.start()
    finally:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


@pytest.fixture
def dev_dir():
    d = temp_dir("mamori-it-kafka-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def metrics(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % server.api_port, context=ctx, timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("mamori_bus_kafka_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def wait_consumed(server, timeout=90):
    """Until both groups have done everything in the topic: every partition assigned in each
    group, lag 0 with every partition's end known (a partition assigned a moment ago has not
    been fetched yet: its lag is unknown, not 0 — counting alerts then found some missing),
    and nothing waiting for the broker."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = metrics(server)
        lags = [v for k, v in m.items() if k.startswith("mamori_bus_kafka_consumer_lag_messages")]
        lags += [v for k, v in m.items() if k.startswith("mamori_bus_kafka_consumer_lag_unknown_partitions")]
        assigned = {}  # group -> partitions assigned over its consumers
        for k, v in m.items():
            if k.startswith("mamori_bus_kafka_assigned_partitions"):
                group = k.split('group="')[1].split('"')[0]
                assigned[group] = assigned.get(group, 0) + v
        if lags and sum(lags) == 0 and len(assigned) == 2 and set(assigned.values()) == {PARTITIONS} and \
                m["mamori_bus_kafka_inflight_batches"] == 0:
            return m
        time.sleep(0.5)
    raise AssertionError("consumers did not catch up: %r" % metrics(server))


def host_counts(dev_dir, prefix):
    args = ["store", "lookup", "--dev", dev_dir, "--tenant", "default", "--field", "host.name"]
    for i in range(AGENTS):
        args += ["--value", "%s-%05d" % (prefix, i)]
    return ctl(*args)


def write_rule(dev_dir):
    rules = os.path.join(dev_dir, "rules")
    os.makedirs(rules, exist_ok=True)
    with open(os.path.join(rules, "cmd.yml"), "w") as f:
        f.write(RULE)
    return rules


def kafka_server(dev_dir, bootstrap, name):
    """A node on its own topic and groups: each test starts from an empty topic."""
    return Server(dev_dir, extra=["--bus", "kafka", "--kafka-bootstrap", bootstrap,
                                  "--set", "bus.kafka.topic=%s.events" % name,
                                  "--set", "bus.kafka.group_prefix=%s-" % name])


def background_sim(dev_dir, *args):
    """The simulator in the background; returns (process, stderr lines, acked-so-far function)."""
    run = sim(dev_dir, *args, "--progress-ms", 200, "--timeout", 300, background=True)
    err_lines = []
    reader = threading.Thread(target=lambda: err_lines.extend(run.stderr), daemon=True)
    reader.start()

    def acked():
        n = 0
        for line in list(err_lines)[-5:]:
            if " acked=" in line:
                n = max(n, int(line.split(" acked=")[1].split()[0]))
        return n
    return run, err_lines, reader, acked


def wait_acked(acked, at_least, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and acked() < at_least:
        time.sleep(0.1)
    return acked()


def test_kafka_bus_exactly_once_across_kill_9(broker, dev_dir):
    server = kafka_server(dev_dir, broker.bootstrap, "kill")
    # two detect consumers share the partitions; the rule's alerts must come out exactly once
    server.extra += ["--rules", write_rule(dev_dir), "--set", "detect.threads=2"]
    server.start(timeout=120)
    try:
        assert "development node (kafka bus" in server.log()
        # 1. every line but the malformed ones, stored once; rejected lines leave index gaps
        s = sim(dev_dir, "--agents", AGENTS, "--events-per-agent", EVENTS, "--agent-prefix", "ka",
                "--inject-malformed", 97, "--timeout", 300)
        assert s["_rc"] == 0, s["_stderr"][-3000:]
        assert s["sent"] == AGENTS * EVENTS and s["acked"] == AGENTS * EVENTS
        rejected = s["rejected"]
        assert rejected > 0 and s["ack_mismatches"] == 0
        m = wait_consumed(server)
        assert m["mamori_bus_kafka_delivered_total"] >= s["batches"]
        assert m["mamori_bus_kafka_delivery_errors_total"] == 0
        assert m['mamori_bus_kafka_invalid_messages_total{group="kill-store",consumer="0"}'] == 0
        assert m['mamori_bus_kafka_reread_failures_total{group="kill-store",consumer="0"}'] == 0
        detect_consumed = sum(v for k, v in m.items()
                              if k.startswith('mamori_bus_kafka_consumed_total{group="kill-detect"'))
        assert detect_consumed >= s["batches"]  # more when a rebalance redelivered some
    finally:
        assert server.stop() == 0, server.log()[-4000:]
    first = AGENTS * EVENTS - rejected
    assert ctl("store", "count", "--dev", dev_dir)["events"] == first
    assert host_counts(dev_dir, "ka")["events"] == first

    # 2. kill -9 in mid-run: nothing acked is lost, nothing is stored twice
    server.start(timeout=120)
    run, err_lines, reader, acked_now = background_sim(dev_dir, "--agents", AGENTS, "--events-per-agent", EVENTS,
                                                      "--agent-prefix", "kb", "--rate", 20000)
    total = AGENTS * EVENTS
    try:
        acked = wait_acked(acked_now, total // 4)
        assert acked >= total // 4, "the simulator made no progress:\n" + "".join(err_lines[-20:])
        assert acked < total, "the run ended before the kill; lower --rate"
        server.kill9()
        time.sleep(1.0)
        # same directory and port; the store catches up with Kafka before ingest listens
        server.start(timeout=120)
        out = run.stdout.read()
        run.wait(timeout=300)
        reader.join(timeout=10)
        wait_consumed(server)
        # every alert exactly once: as many as the stored events the rule matches (alert ids
        # are deterministic, so redelivered or re-detected batches add none)
        alerts = subprocess.run([MAMORICTL, "alerts", "--dev", dev_dir, "--json", "--limit", "100000"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        assert alerts.returncode == 0, alerts.stderr
        alert_count = len([l for l in alerts.stdout.splitlines() if l.strip()])
        matching = ctl("search", "--dev", dev_dir, "--from", "2000-01-01T00:00:00Z",
                       r'process where event.type == "start" and process.executable : "*\\cmd.exe" | count')
        assert alert_count == matching["count"] > 0, (alert_count, matching)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    s = parse_sim(run.returncode, out, "".join(err_lines))
    assert s["_rc"] == 0, s["_stderr"][-3000:]
    assert s["sent"] == total and s["acked"] == total and s["rejected"] == 0
    assert s["reconnects"] >= AGENTS, "every agent should have reconnected after the kill"
    assert s["seq_regressions"] == 0, "a WELCOME went below an ACK the agent already had"
    assert ctl("store", "count", "--dev", dev_dir)["events"] == first + total
    counts = host_counts(dev_dir, "kb")
    assert counts["events"] == total, "events lost or duplicated across the crash"
    assert set(counts["by_value"].values()) == {EVENTS}


def count_alerts(dev_dir):
    alerts = subprocess.run([MAMORICTL, "alerts", "--dev", dev_dir, "--json", "--limit", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert alerts.returncode == 0, alerts.stderr
    return len([l for l in alerts.stdout.splitlines() if l.strip()])


@pytest.mark.skipif(os.geteuid() == 0 and not os.path.exists("/usr/bin/setpriv"), reason="needs setpriv")
def test_no_rule_set_holds_the_detect_offsets(broker, dev_dir):
    """The first rule-set build fails (the rule directory cannot be read; docs/detection.md
    §7.1): the store group goes on, the detect group consumes nothing, so its committed offsets
    hold; once a build succeeds (SIGHUP) every matching event alerts, exactly once."""
    rules = write_rule(dev_dir)
    os.chmod(rules, 0)
    server = kafka_server(dev_dir, broker.bootstrap, "norules")
    server.prefix = unprivileged(dev_dir)
    server.extra += ["--rules", rules]
    server.start(timeout=120)
    try:
        deadline = time.time() + 60
        while "no rule set could be built: the detection threads wait" not in server.log():
            assert time.time() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        s = sim(dev_dir, "--agents", 4, "--events-per-agent", 2000, "--agent-prefix", "kn", "--timeout", 300)
        assert s["_rc"] == 0 and s["acked"] == 8000, s["_stderr"][-3000:]
        deadline = time.time() + 90
        everything = ("search", "--dev", dev_dir, "--from", "2000-01-01T00:00:00Z", "any where true | count")
        while ctl(*everything)["count"] < 8000:
            assert time.time() < deadline, "the store group did not go on without rules"
            time.sleep(0.5)
        m = metrics(server)
        detect = 'mamori_bus_kafka_consumed_total{group="norules-detect"'
        assert not any(v for k, v in m.items() if k.startswith(detect))
        assert count_alerts(dev_dir) == 0
        # a stop while the threads wait does not wait for them; the offsets still hold after it
        t0 = time.time()
        assert server.stop() == 0, server.log()[-4000:]
        assert time.time() - t0 < 30
        mark = len(server.log())
        server.start(timeout=120)
        deadline = time.time() + 60
        while "no rule set could be built: the detection threads wait" not in server.log()[mark:]:
            assert time.time() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        os.chmod(rules, 0o755)
        mark = len(server.log())
        server.proc.send_signal(1)
        deadline = time.time() + 60
        while "rule set loaded" not in server.log()[mark:]:
            assert time.time() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        wait_consumed(server)
        matching = ctl("search", "--dev", dev_dir, "--from", "2000-01-01T00:00:00Z",
                       r'process where event.type == "start" and process.executable : "*\\cmd.exe" | count')
        assert count_alerts(dev_dir) == matching["count"] > 0
    finally:
        server.stop()


def test_broker_outage_is_backpressure_not_loss(broker, dev_dir):
    """The broker stops in mid-run: nothing is acked while it is away (the agents keep their
    spools, ingest stops reading them); once it is back everything arrives exactly once."""
    server = kafka_server(dev_dir, broker.bootstrap, "outage").start(timeout=120)
    total = AGENTS * 2500
    run, err_lines, reader, acked_now = background_sim(dev_dir, "--agents", AGENTS, "--events-per-agent", 2500,
                                                      "--agent-prefix", "ko", "--rate", 5000)
    try:
        assert wait_acked(acked_now, total // 5) >= total // 5, "no progress:\n" + "".join(err_lines[-20:])
        broker.stop()
        time.sleep(2)  # acks already on their way arrive
        during = acked_now()
        assert during < total, "the run ended before the outage; lower --rate"
        time.sleep(6)
        assert acked_now() == during, "acked while the broker was down"
        m = metrics(server)
        assert m["mamori_bus_kafka_inflight_batches"] > 0  # held, not dropped
        assert m["mamori_bus_kafka_delivery_errors_total"] == 0
        broker.start()  # same address: the client reconnects by itself
        out = run.stdout.read()
        run.wait(timeout=300)
        reader.join(timeout=10)
        wait_consumed(server)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    s = parse_sim(run.returncode, out, "".join(err_lines))
    assert s["_rc"] == 0, s["_stderr"][-3000:]
    assert s["sent"] == total and s["acked"] == total
    assert ctl("store", "count", "--dev", dev_dir)["events"] == total
    counts = host_counts(dev_dir, "ko")
    assert counts["events"] == total
    assert set(counts["by_value"].values()) == {2500}




def test_kcat_producer_is_ingested(broker, dev_dir):
    """An external producer (kcat: one message per line, keyed tenant/agent, no mamori.* headers
    but the format) is stored like agent data and detected; a line that is not JSON is rejected
    alone."""
    rules = write_rule(dev_dir)
    server = kafka_server(dev_dir, broker.bootstrap, "kcat")
    server.extra += ["--rules", rules]
    server.start(timeout=120)
    try:
        ecs = ('{"@timestamp":"2026-11-26T01:00:00Z","event":{"category":"process"},"process":{"name":"cmd.exe"}}\n'
               '{"process":{"name":"b.exe"}}\nnot json\n')
        subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "kcat.events", "-k", "acme/host-7"],
                       input=ecs, text=True, check=True, timeout=60)
        sysmon = ('{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"C:\\\\w\\\\x.exe",'
                  '"UtcTime":"2026-11-26 01:00:00.000"}\n')
        subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "kcat.events", "-k", "acme/host-8",
                        "-H", "mamori.format=winlog"], input=sysmon, text=True, check=True, timeout=60)
        # the admin key of the development node is tenant default's: its alert is readable
        subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", "kcat.events", "-k", "default/host-9",
                        "-H", "mamori.format=winlog"], input=sysmon.replace("x.exe", "cmd.exe"), text=True,
                       check=True, timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline:
            m = metrics(server)
            if m['mamori_bus_kafka_consumed_total{group="kcat-store",consumer="0"}'] >= 5:
                break
            time.sleep(0.2)
        wait_consumed(server)
        deadline = time.time() + 30
        alerts = []
        while time.time() < deadline and not alerts:
            p = subprocess.run([MAMORICTL, "alerts", "--dev", dev_dir, "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            alerts = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
            time.sleep(0.2)
        assert len(alerts) == 1, alerts
        assert "host-9" in json.dumps(alerts[0])
    finally:
        server.stop()
    assert ctl("store", "count", "--dev", dev_dir, "--tenant", "acme")["events"] == 3
    by_host = ctl("store", "lookup", "--dev", dev_dir, "--tenant", "acme", "--field", "host.id",
                  "--value", "host-7", "--value", "host-8")["by_value"]
    assert by_host == {"host-7": 2, "host-8": 1}
    by_name = ctl("store", "lookup", "--dev", dev_dir, "--tenant", "acme", "--field", "process.name",
                  "--value", "x.exe", "--value", "cmd.exe", "--value", "b.exe")["by_value"]
    assert by_name == {"x.exe": 1, "cmd.exe": 1, "b.exe": 1}

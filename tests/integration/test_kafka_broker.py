"""deploy/kafka-dev.sh: a real single-node Apache Kafka broker on loopback. The start contract
(last stdout line bootstrap=127.0.0.1:PORT once it serves), keyed messages with headers through
kcat (plain and in a consumer group), a second start reporting the running broker, a stop that
closes the port, leaves no JVM of the directory and can be repeated, and a restart that keeps
the address and the data. The first run resolves the broker with Maven (tens of MB)."""
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

from harness import temp_dir

SOURCE = os.environ.get("MAMORI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
KAFKA_DEV = os.path.join(SOURCE, "deploy/kafka-dev.sh")
START_TIMEOUT_S = 900  # the first start downloads the broker's jars
TOPIC = "mamori.test"
MESSAGES = [  # (key, value, headers): two hosts of one tenant, each keyed tenant/agent
    ("acme/agent-1", '{"seq":1}', {"tenant": "acme", "agent": "agent-1"}),
    ("acme/agent-2", '{"seq":1}', {"tenant": "acme", "agent": "agent-2"}),
    ("acme/agent-1", '{"seq":2}', {"tenant": "acme", "agent": "agent-1"}),
    ("acme/agent-1", '{"seq":3}', {"tenant": "acme", "agent": "agent-1"}),
    ("acme/agent-2", '{"seq":2}', {"tenant": "acme", "agent": "agent-2"}),
]


def kafka_dev(*args, timeout=120):
    return subprocess.run([KAFKA_DEV, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def bootstrap_of(p):
    """The contract: bootstrap=127.0.0.1:PORT is the last line of stdout."""
    assert p.returncode == 0, "kafka-dev.sh failed:\n" + p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines, "no stdout:\n" + p.stderr
    m = re.fullmatch(r"bootstrap=(127\.0\.0\.1:(\d+))", lines[-1])
    assert m, "last stdout line is %r:\n%s" % (lines[-1], p.stdout)
    return m.group(1), int(m.group(2))


def broker_pids(d):
    """Every process whose command line names the directory (the broker is given DIR/server.properties)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "kafka.Kafka" in args and any(a.startswith(d + "/") for a in args):
            pids.append(int(pid))
    return pids


def port_open(port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def produce(addr, messages):
    for key, value, headers in messages:
        cmd = ["kcat", "-P", "-b", addr, "-t", TOPIC, "-k", key]
        for k, v in headers.items():
            cmd += ["-H", "%s=%s" % (k, v)]
        subprocess.run(cmd, input=value, text=True, check=True, timeout=60)


def decode(out):
    got = []
    for line in out.splitlines():
        m = json.loads(line)
        h = m.get("headers") or []
        got.append((m["partition"], m["offset"], m["key"], m["payload"], dict(zip(h[0::2], h[1::2]))))
    return got


def consume(addr):
    """Everything in the topic, from the beginning, then exit."""
    p = subprocess.run(["kcat", "-C", "-b", addr, "-t", TOPIC, "-o", "beginning", "-e", "-q", "-J"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return decode(p.stdout)


def consume_group(addr, group, count):
    """COUNT messages through a consumer group (the group coordinator and the offsets topic work)."""
    p = subprocess.run(["kcat", "-b", addr, "-G", group, "-o", "beginning", "-c", str(count), "-q", "-J", TOPIC],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    return decode(p.stdout)


def check_messages(got, expected):
    assert sorted((k, v, tuple(sorted(h.items()))) for _, _, k, v, h in got) == \
        sorted((k, v, tuple(sorted(h.items()))) for k, v, h in expected)
    # one key, one partition, in the order produced
    for key in {k for k, _, _ in expected}:
        mine = sorted((o, p, v) for p, o, k, v, _ in got if k == key)
        assert len({p for _, p, _ in mine}) == 1, mine
        assert [v for _, _, v in mine] == [v for k, v, _ in expected if k == key]


@pytest.fixture
def broker_dir():
    d = os.path.realpath(temp_dir("mamori-kafka-"))
    yield d
    kafka_dev("stop", d)  # whatever the test did, no broker outlives it
    assert broker_pids(d) == []
    shutil.rmtree(d, ignore_errors=True)


def test_start_produce_consume_stop(broker_dir):
    d = broker_dir
    p = kafka_dev("start", d, timeout=START_TIMEOUT_S)
    addr, port = bootstrap_of(p)
    assert port_open(port)
    pids = broker_pids(d)
    assert len(pids) == 1, pids
    with open(os.path.join(d, "server.properties")) as f:
        props = f.read()
    assert "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:" % port in props
    assert os.path.getsize(os.path.join(d, "broker.log")) > 0  # the broker logs to DIR, not the terminal

    produce(addr, MESSAGES)
    check_messages(consume(addr), MESSAGES)
    check_messages(consume_group(addr, "mamori-test", len(MESSAGES)), MESSAGES)

    # a second start reports the running broker, starts no other
    again = kafka_dev("start", d)
    assert bootstrap_of(again) == (addr, port)
    assert broker_pids(d) == pids
    status = kafka_dev("status", d)
    assert status.returncode == 0 and status.stdout.strip().splitlines()[-1] == "bootstrap=" + addr

    stop = kafka_dev("stop", d)
    assert stop.returncode == 0, stop.stderr
    assert not port_open(port)
    assert broker_pids(d) == []
    assert kafka_dev("stop", d).returncode == 0  # idempotent
    assert kafka_dev("status", d).returncode == 3

    # a restart keeps the address (clients reconnect) and the data
    p = kafka_dev("start", d, timeout=START_TIMEOUT_S)
    assert bootstrap_of(p) == (addr, port)
    check_messages(consume(addr), MESSAGES)
    assert kafka_dev("stop", d).returncode == 0
    assert not port_open(port)
    assert broker_pids(d) == []

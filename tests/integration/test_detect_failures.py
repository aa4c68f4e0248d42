"""Live detection when something fails (docs/detection.md §7): nothing received is left
undetected, nothing alerts twice.

- No rule set at start (§7.1): the first build fails, ingest and the store go on, and the
  events received meanwhile are detected once a build succeeds — by the first good build
  while the node runs (SIGHUP or the loader's own retry), or by the next start. The failure is
  made real: the rule directory cannot be read (mode 000, mamorid run as nobody when the tests
  run as root, since root reads it anyway); the directory is checked only for existence at
  start, so the start goes on and the loader's build fails.
- Writes and reads that fail, through failpoints (README, "Building and testing by hand"): a
  re-detection that cannot write its alerts or read its gap (§7.4), a detection thread's alert write failing
  and retried (§7.2), or failing until shutdown (§7.2)."""
import os
import threading
import time

import pytest

from harness import FORMAT_ECS, Server, free_port, temp_dir, unprivileged
from test_alerts import RULE_A, Api, Sender, ecs_process, restart, wait_log

RULE_A_ID = "5b0c7b58-0a6e-4b0e-9d7e-aaaaaaaaaaaa"

needs_setpriv = pytest.mark.skipif(os.geteuid() == 0 and not os.path.exists("/usr/bin/setpriv"),
                                   reason="needs setpriv to run mamorid as nobody")


def start(srv, failpoints=None):
    """Starts srv, with MAMORI_FAILPOINTS set for that process only."""
    if failpoints:
        os.environ["MAMORI_FAILPOINTS"] = failpoints
    try:
        return srv.start()
    finally:
        os.environ.pop("MAMORI_FAILPOINTS", None)


def rule_a_node(prefix, readable=True):
    """A node (not started) with rule A in its rule directory: (server, that directory).
    Unreadable: the directory has mode 000 and mamorid runs as nobody when we are root."""
    d = temp_dir(prefix)
    rules = os.path.join(d, "rules")
    os.makedirs(rules)
    with open(os.path.join(rules, "a.yml"), "w") as f:
        f.write(RULE_A)
    if not readable:
        os.chmod(rules, 0)
    api_port = free_port()
    srv = Server(d, prefix=[] if readable else unprivileged(d),
                 extra=["--api-port", str(api_port), "--rules", rules, "--set", "api.rate_limit_per_key=0"])
    return srv, rules


@pytest.fixture
def node():
    """mamorid whose first rule-set build failed: (server, api, its rule directory). The
    directory holds rule A and has mode 000 until a test makes it readable."""
    srv, rules = rule_a_node("mamori-degraded-", readable=False)
    srv.extra += ["--set", "store.sync=false"]
    try:
        srv.start()
        wait_log(srv, r"no rule set could be built: events are stored but not detected")
        yield srv, Api(srv.dir, srv.api_port), rules
    finally:
        srv.stop()


def batch():
    """One whoami (rule A fires) and one event it does not fire on, stamped now (re-detection
    finds stored events by their time)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = [ecs_process("C:\\Windows\\System32\\whoami.exe", "whoami /all"),
              ecs_process("C:\\Windows\\System32\\notepad.exe", "notepad a.txt")]
    for e in events:
        e["@timestamp"] = now
    return events


def wait_metric(api, name, want, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = api.metrics().get(name, -1)
        if v >= want:
            return v
        time.sleep(0.1)
    raise AssertionError("%s stayed below %s: %r" % (name, want, api.metrics().get(name)))


def wait_for(get, want, timeout=60):
    """Polls get() until it returns want (True), or returns False after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if get() == want:
            return True
        time.sleep(0.2)
    return get() == want


def send_batches(srv, agent, n):
    """n batches from one agent, each acked; their seqs."""
    s = Sender(srv, agent)
    seqs = [s.send(batch(), fmt=FORMAT_ECS) for _ in range(n)]
    s.close()
    return seqs


def taken_without_rules(srv, api, agent, n):
    seqs = send_batches(srv, agent, n)
    wait_metric(api, "mamori_detect_batches_skipped_total", n)
    return seqs


def gap_then_restart(srv, api, rules, agent, failpoint):
    """Three batches of agent taken without rules (a gap), then a restart with the rule
    directory readable and `failpoint` armed: (the gap's seqs, the log offset of the new run)."""
    early = taken_without_rules(srv, api, agent, 3)
    os.chmod(rules, 0o755)
    srv.stop()
    mark = len(srv.log())
    start(srv, failpoint)
    return early, mark


def assert_one_alert_each(api, seqs):
    fired = alerts_by_seq(api)
    assert sorted(fired) == sorted(seqs) and set(fired.values()) == {1}, (sorted(fired), sorted(seqs))
    return fired


def alerts_by_agent_seq(api):
    out = {}
    for a in api.alerts(limit=1000)[0]:
        assert a["rule"]["id"] == RULE_A_ID, a
        k = (a["agent_id"], a["event"]["seq"])
        out[k] = out.get(k, 0) + 1
    return out


def alerts_by_seq(api):
    out = {}
    for a in api.alerts(limit=1000)[0]:
        assert a["rule"]["id"] == RULE_A_ID, a
        out[a["event"]["seq"]] = out.get(a["event"]["seq"], 0) + 1
    return out


@needs_setpriv
def test_batches_taken_without_rules_are_detected_by_the_first_good_build(node):
    srv, api, rules = node
    m = api.metrics()
    assert m["mamori_detect_no_ruleset"] == 1
    s = Sender(srv, "degraded-01")
    # enough that re-detecting them takes a while, while more arrive
    early = [s.send(batch(), fmt=FORMAT_ECS) for _ in range(300)]
    wait_metric(api, "mamori_detect_batches_skipped_total", len(early))
    assert api.alerts(limit=10)[0] == []
    assert api.metrics()["mamori_detect_no_ruleset"] == 1
    assert api.metrics()["mamori_detect_batches_total"] == 0
    # a failed retry changes nothing
    mark = len(srv.log())
    srv.proc.send_signal(1)
    wait_log(srv, r"rule set build failed, still detecting nothing: .*rules", start=mark)
    assert api.metrics()["mamori_detect_reloads_total{result=\"failed\"}"] == 2
    # the directory readable again, SIGHUP while an agent keeps sending: every batch, taken
    # before, during or after the switch, gets its alert once
    os.chmod(rules, 0o755)
    during, stop = [], threading.Event()

    def keep_sending():
        while not stop.is_set():
            during.append(s.send(batch(), fmt=FORMAT_ECS))

    t = threading.Thread(target=keep_sending)
    t.start()
    try:
        time.sleep(0.3)
        mark = len(srv.log())
        srv.proc.send_signal(1)
        wait_log(srv, r"rule set loaded generation=\d+ rules=1 ", start=mark)
        wait_log(srv, r"(\d+) agents have (\d+) batches stored but not detected \(taken while no rule set could "
                      r"be built\): re-detecting them", start=mark)
        found = wait_log(srv, r"re-detection done batches_found=(\d+) batches_missing=0 ", start=mark)
        wait_log(srv, r"detecting again", start=mark)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    late = [s.send(batch(), fmt=FORMAT_ECS) for _ in range(3)]
    s.close()
    sent = early + during + late
    assert len(during) > 0 and int(found.group(1)) >= len(early)
    deadline = time.time() + 60
    while time.time() < deadline and len(alerts_by_seq(api)) < len(sent):
        time.sleep(0.2)
    fired = alerts_by_seq(api)
    assert sorted(fired) == sorted(sent), (sorted(fired), sorted(sent))
    assert set(fired.values()) == {1}
    m = api.metrics()
    assert m["mamori_detect_no_ruleset"] == 0
    assert m["mamori_detect_recovered_batches_total"] == int(found.group(1))
    assert m["mamori_detect_recovered_alerts_total"] >= len(early)
    # the watermarks moved past them: a restart re-detects nothing
    mark = restart(srv)
    wait_log(srv, r"rule set loaded", start=mark)
    api.wait_detected(0)
    assert "re-detecting" not in srv.log()[mark:]
    assert alerts_by_seq(api) == fired


@needs_setpriv
def test_batches_taken_without_rules_are_detected_at_the_next_start(node):
    srv, api, rules = node
    seqs = taken_without_rules(srv, api, "degraded-02", 4)
    # stopped while degraded: no watermark was written for them
    os.chmod(rules, 0o755)
    mark = restart(srv)
    wait_log(srv, r"re-detection done batches_found=%d batches_missing=0 " % len(seqs), start=mark)
    assert_one_alert_each(api, seqs)


@needs_setpriv
def test_the_loader_builds_again_by_itself(node):
    """No SIGHUP: the loader's own retry (10 s after the failed first build) picks the
    readable directory up, and what was taken meanwhile is detected."""
    srv, api, rules = node
    seqs = taken_without_rules(srv, api, "degraded-03", 3)
    os.chmod(rules, 0o755)
    wait_log(srv, r"building the rule set again", timeout=30)
    wait_log(srv, r"re-detection done batches_found=%d batches_missing=0 " % len(seqs), timeout=30)
    assert "SIGHUP: reloading" not in srv.log()
    assert_one_alert_each(api, seqs)


@needs_setpriv
def test_a_redetection_that_cannot_write_holds_the_watermarks(node):
    """The re-detection's alert writes fail (failpoint detect.recover.write, docs/detection.md
    §7.4): the agent's later batches are detected and alert, but its watermark stays below the
    gap, so the next start re-detects the gap instead of losing it."""
    srv, api, rules = node
    early, mark = gap_then_restart(srv, api, rules, "degraded-04", "detect.recover.write")
    wait_log(srv, r"re-detection: writing \d+ alerts failed", start=mark)
    wait_log(srv, r"re-detection incomplete: the watermarks of 1 agents stay where they are", start=mark)
    later = send_batches(srv, "degraded-04", 2)
    # live detection goes on; the gap has no alerts yet
    assert wait_for(lambda: sorted(alerts_by_seq(api)), later), sorted(alerts_by_seq(api))
    api.wait_detected(len(later))
    assert api.metrics()["mamori_detect_watermarks_held"] == 1
    mark = restart(srv)  # no failpoint now
    wait_log(srv, r"re-detection done batches_found=%d batches_missing=0 " % len(early + later), start=mark)
    assert_one_alert_each(api, early + later)
    assert api.metrics()["mamori_detect_watermarks_held"] == 0


@needs_setpriv
def test_a_gap_that_cannot_be_read_holds_every_watermark(node):
    """The detection state cannot be read at start (failpoint detect.recover.read, docs/
    detection.md §7.4), so the gap is not even listed: no watermark may move for the run, or
    the later batches would carry it past the gap. The next start re-detects the gap."""
    srv, api, rules = node
    early, mark = gap_then_restart(srv, api, rules, "degraded-05", "detect.recover.read")
    wait_log(srv, r"cannot read the detection state: re-detection skipped; no watermark moves", start=mark)
    wait_log(srv, r"correlation checkpoints are off until the next start", start=mark)
    later = [("degraded-05", q) for q in send_batches(srv, "degraded-05", 2)]
    later += [("degraded-06", q) for q in send_batches(srv, "degraded-06", 1)]
    # live detection goes on; the gap has no alerts yet
    assert wait_for(lambda: sorted(alerts_by_agent_seq(api)), sorted(later)), sorted(alerts_by_agent_seq(api))
    api.wait_detected(len(later))
    assert api.metrics()["mamori_detect_watermarks_held"] == 1
    mark = restart(srv)  # no failpoint now
    # both agents re-detected: degraded-06's watermark did not move either
    wait_log(srv, r"2 agents have 6 batches stored but not detected", start=mark)
    wait_log(srv, r"re-detection done batches_found=6 batches_missing=0 ", start=mark)
    fired = alerts_by_agent_seq(api)
    assert sorted(fired) == sorted([("degraded-05", q) for q in early] + later) and set(fired.values()) == {1}
    assert api.metrics()["mamori_detect_watermarks_held"] == 0


def test_alert_writes_that_fail_are_retried():
    """A detection thread's alert write fails three times (failpoint detect.commit=3): the
    batch stays pending, the write is retried with backoff, and the alert is written once."""
    srv, _ = rule_a_node("mamori-commit-fail-")
    start(srv, "detect.commit=3")
    api = Api(srv.dir, srv.api_port)
    try:
        wait_log(srv, r"failpoints armed \(1\): detect.commit=3")
        wait_log(srv, r"rule set loaded")
        seqs = send_batches(srv, "commit-01", 2)  # acked: acks never wait for detection
        m = api.wait_detected(len(seqs), timeout=60)
        assert m["mamori_detect_commit_errors_total"] == 3
        wait_log(srv, r"writing \d+ alerts failed, retrying: Input/output error")
        assert_one_alert_each(api, seqs)
        assert m["mamori_detect_alerts_total{rule_id=\"%s\",level=\"medium\"}" % RULE_A_ID] == len(seqs)
    finally:
        srv.stop()


def test_alerts_not_written_by_shutdown_are_redetected_at_the_next_start():
    """Every alert write fails (failpoint detect.commit) until mamorid is stopped: after its
    30 s shutdown wait it leaves the batches not marked detected (docs/detection.md §7.2), and
    the next start re-detects them, one alert each."""
    srv, _ = rule_a_node("mamori-commit-stop-")
    start(srv, "detect.commit")
    api = Api(srv.dir, srv.api_port)
    try:
        wait_log(srv, r"rule set loaded")
        seqs = send_batches(srv, "commit-02", 2)
        wait_metric(api, "mamori_detect_commit_errors_total", 1)
        assert alerts_by_seq(api) == {}
        srv.stop(timeout=90)
        wait_log(srv, r"shutdown: [12] batches not done \(never durable, or their alerts")
        mark = len(srv.log())
        start(srv)
        wait_log(srv, r"re-detection done batches_found=%d batches_missing=0 " % len(seqs), start=mark)
        assert_one_alert_each(api, seqs)
    finally:
        srv.stop()

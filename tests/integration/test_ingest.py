"""Spine, end to end with the real binaries: simulated agents over mutual TLS into a
durable, indexed store — every event exactly once, also across kill -9."""
import os
import shutil
import threading
import time

import pytest

from harness import Server, ctl, parse_sim, sim, temp_dir


@pytest.fixture
def dev_dir():
    d = temp_dir("mamori-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def agent_ids(n, prefix="sim"):
    return ["%s-%05d" % (prefix, i) for i in range(n)]


def host_index_counts(dev_dir, agents):
    """Counts through the host.name index (the simulator names each host after its agent;
    host.id is the host's own GUID, as real agents send it)."""
    args = ["store", "lookup", "--dev", dev_dir, "--tenant", "default", "--field", "host.name"]
    for a in agents:
        args += ["--value", a]
    return ctl(*args)


def test_200_agents_5000_events_each_stored_exactly_once(dev_dir):
    server = Server(dev_dir).start()
    try:
        s = sim(dev_dir, "--agents", 200, "--events-per-agent", 5000, "--timeout", 600)
        assert s["_rc"] == 0, s["_stderr"][-3000:]
        assert s["agents"] == 200
        assert s["sent"] == 1_000_000
        assert s["acked"] == 1_000_000
        assert s["rejected"] == 0
    finally:
        assert server.stop() == 0, server.log()[-4000:]
    # by a scan of the event keys
    assert ctl("store", "count", "--dev", dev_dir)["events"] == 1_000_000
    assert ctl("store", "count", "--dev", dev_dir, "--tenant", "default")["events"] == 1_000_000
    # and through the host index: each agent's events, each exactly once
    counts = host_index_counts(dev_dir, agent_ids(200))
    assert counts["events"] == 1_000_000
    assert set(counts["by_value"].values()) == {5000}


def test_kill_9_mid_run_loses_nothing_and_duplicates_nothing(dev_dir):
    server = Server(dev_dir).start()
    total = 1_000_000
    # rate-limited so the kill lands mid-run however fast the machine is; progress lines on
    # stderr tell how far the agents got
    run = sim(dev_dir, "--agents", 100, "--events-per-agent", total // 100, "--rate", 60000,
              "--progress-ms", 200, "--timeout", 900, background=True)
    err_lines = []
    reader = threading.Thread(target=lambda: err_lines.extend(run.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 300
        acked = 0
        while time.time() < deadline and acked < total // 4:
            for line in list(err_lines)[-5:]:
                if " acked=" in line:
                    acked = max(acked, int(line.split(" acked=")[1].split()[0]))
            time.sleep(0.1)
        assert acked >= total // 4, "the simulator made no progress:\n" + "".join(err_lines[-20:])
        server.kill9()  # no warning, no flush: only what was acked must survive
        time.sleep(1.0)
        server.start()  # same directory, same port: the agents reconnect and resend
        out = run.stdout.read()
        run.wait(timeout=900)
        reader.join(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    s = parse_sim(run.returncode, out, "".join(err_lines))
    assert s["_rc"] == 0, s["_stderr"][-3000:]
    assert s["sent"] == total and s["acked"] == total
    assert s["reconnects"] >= 100, "every agent should have reconnected after the kill"
    assert ctl("store", "count", "--dev", dev_dir)["events"] == total
    counts = host_index_counts(dev_dir, agent_ids(100))
    assert counts["events"] == total, "index entries lost or duplicated across the crash"
    assert set(counts["by_value"].values()) == {total // 100}


def test_restart_with_same_dir_keeps_data_and_resumes_sequence(dev_dir):
    server = Server(dev_dir).start()
    try:
        first = sim(dev_dir, "--agents", 5, "--events-per-agent", 2000)
        assert first["_rc"] == 0 and first["acked"] == 10_000
    finally:
        server.stop()
    server.start()
    try:
        # a fresh simulator process has no spool and numbers from scratch: WELCOME tells it
        # where to continue, so nothing stored before is overwritten or hidden
        second = sim(dev_dir, "--agents", 5, "--events-per-agent", 2000)
        assert second["_rc"] == 0 and second["acked"] == 10_000
    finally:
        server.stop()
    assert ctl("store", "count", "--dev", dev_dir)["events"] == 20_000
    assert host_index_counts(dev_dir, agent_ids(5))["events"] == 20_000


def test_otrf_replay_is_normalized_and_indexed(dev_dir):
    data = os.environ.get("MAMORI_DATA_DIR")
    zips = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(data, "otrf")) for f in fs if f.endswith(".zip"))
    assert zips, "no OTRF recordings under " + data
    server = Server(dev_dir).start()
    try:
        s = sim(dev_dir, "--agents", 4, "--events-per-agent", 5000, "--format", "winlog", "--replay", *zips[:6])
        assert s["_rc"] == 0, s["_stderr"][-2000:]
        assert s["acked"] == 20_000 and s["rejected"] == 0
    finally:
        server.stop()
    assert ctl("store", "count", "--dev", dev_dir)["events"] == 20_000
    # Sysmon process creations arrive as ECS process events
    procs = ctl("store", "lookup", "--dev", dev_dir, "--tenant", "default", "--field", "event.category",
                "--value", "process")
    assert procs["events"] > 0


def test_failed_store_writes_delay_the_ack_and_lose_nothing(dev_dir):
    """The store's group commit fails three times (failpoint store.write=3, README): the batch
    is not acknowledged until a retry has made it durable, and it is stored once."""
    from test_alerts import FORMAT_ECS, Api, Sender, ecs_process  # raw protocol, one batch per ACK
    os.environ["MAMORI_FAILPOINTS"] = "store.write=3"
    try:
        server = Server(dev_dir, extra=["--set", "api.rate_limit_per_key=0"]).start()
    finally:
        del os.environ["MAMORI_FAILPOINTS"]
    try:
        api = Api(dev_dir, server.api_port)
        s = Sender(server, "fail-01")
        t0 = time.time()
        first = s.send([ecs_process("C:\\Windows\\System32\\whoami.exe", "whoami")] * 3, fmt=FORMAT_ECS)
        waited = time.time() - t0
        t0 = time.time()
        s.send([ecs_process("C:\\Windows\\System32\\whoami.exe", "whoami")], fmt=FORMAT_ECS)
        second = time.time() - t0
        s.close()
        m = api.metrics()
        assert m["mamori_store_group_commit_errors_total"] == 3
        # retried after 50, 100 and 200 ms: the ACK waited for the fourth write
        assert waited >= 0.35 > second, (waited, second)
        assert first == 1 and m["mamori_store_batches_written_total"] == 2
        assert m["mamori_store_events_written_total"] == 4
        assert "group commit failed, retrying" in server.log()
    finally:
        server.stop()

"""Remote response against the real server, with a Python test agent speaking protocol v1
over mutual TLS (docs/response.md): COMMAND delivery (online, queued while offline, again
after a reconnect), RESULT handling, fetch_file chunks with size and sha256 checks, expiry,
isolation as desired state (WELCOME, heartbeats, drift alert), the API (roles, tenants,
validation errors, audit) — independent of the simulator."""
import contextlib
import hashlib
import json
import os
import shutil
import time

import pytest

from harness import (COMMAND, PING, PONG, RESULT, WELCOME, Agent, Server, frame, free_port, make_agent_cert, temp_dir)
from test_api import Api

CHUNK, LAST = 0x08, 0x10


class RespAgent(Agent):
    """A responding agent: HELLO with capabilities, COMMANDs in, RESULTs out."""

    def __init__(self, node, agent_id, tenant="default"):
        certs = os.path.join(node["dir"], "test-certs")
        os.makedirs(certs, exist_ok=True)
        crt = os.path.join(certs, agent_id + ".pem")
        key = os.path.join(certs, agent_id + ".key")
        if not os.path.exists(crt):
            make_agent_cert(os.path.join(node["dir"], "ca.pem"), os.path.join(node["dir"], "ca.key"), agent_id, tenant,
                            certs)
        super().__init__(node["port"], os.path.join(node["dir"], "ca.pem"), crt, key)
        self.id = agent_id

    def hello_caps(self, caps=("zstd", "response", "isolation"), isolation="none"):
        body = {"protocol": 1, "agent_version": "pytest-1", "host": {"name": "H-" + self.id, "os": {"type": "linux"}},
                "capabilities": list(caps)}
        if isolation:
            body["isolation"] = isolation
        self.send(frame(1, json.dumps(body).encode()))
        f = self.recv_frame()
        assert f and f[0] == WELCOME, f
        return json.loads(f[3])

    def next_command(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.recv_frame(timeout=max(0.1, deadline - time.time()))
            if f is None:
                return None
            if f[0] == COMMAND:
                return f[2], json.loads(f[3])
        return None

    def commands(self, n, timeout=30):
        """Up to n COMMANDs arriving within timeout."""
        cmds, deadline = [], time.time() + timeout
        while time.time() < deadline and len(cmds) < n:
            c = self.next_command(timeout=max(0.1, deadline - time.time()))
            if c:
                cmds.append(c)
        return cmds

    def result(self, seq, cid, status, output=None, error=None):
        body = {"id": cid, "status": status}
        if output is not None:
            body["output"] = output
        if error is not None:
            body["error"] = error
        self.send(frame(RESULT, json.dumps(body).encode(), seq=seq))

    def chunk(self, seq, data, last=False):
        self.send(frame(RESULT, data, seq=seq, flags=CHUNK | (LAST if last else 0)))

    def ping(self, isolation, nonce=7):
        self.send(frame(PING, json.dumps({"isolation": isolation, "spool_batches": 0}).encode(), seq=nonce))
        while True:
            f = self.recv_frame()
            assert f is not None, "connection closed instead of PONG"
            if f[0] == PONG:
                return


@pytest.fixture(scope="module")
def node():
    d = temp_dir("mamori-resp-")
    port, api_port = free_port(), free_port()
    srv = Server(d, port=port, extra=["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0",
                                      "--set", "store.sync=false", "--set", "response.drift_grace_s=1",
                                      "--set", "response.max_file_bytes=1048576",
                                      "--set", "response.isolation_allow=[10.9.9.9:443]"]).start()
    try:
        yield {"srv": srv, "api": Api(d, api_port), "dir": d, "port": port}
    finally:
        rc = srv.stop()
        log = srv.log()
        shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, log[-3000:]
    assert "runtime error" not in log and "Sanitizer" not in log, log[-3000:]


def post(api, agent, action, args=None, key=None, **kw):
    body = {"action": action}
    if args is not None:
        body["args"] = args
    body.update(kw)
    return api.call("POST", "/v1/agents/%s/actions" % agent, body, key=key)


def wait_status(api, aid, want, timeout=10):
    deadline = time.time() + timeout
    while True:
        st, a = api.call("GET", "/v1/actions/" + aid)
        assert st == 200, a
        if a["status"] == want or time.time() > deadline:
            return a
        time.sleep(0.05)


def test_isolate_command_result_and_welcome(node):
    api = node["api"]
    ag = RespAgent(node, "resp-iso")
    w = ag.hello_caps()
    assert w["isolation"] == "none"
    st, a = post(api, "resp-iso", "isolate")
    assert st == 201, a
    assert a["status"] == "queued" and a["actor"].startswith("key:") and a["command"] == 1
    seq, cmd = ag.next_command()
    assert seq == 1 and cmd["id"] == a["id"] and cmd["action"] == "isolate"
    # the allow list: the ingest address this agent uses, then response.isolation_allow
    assert cmd["args"]["allow"] == ["127.0.0.1:%d" % node["port"], "10.9.9.9:443"]
    assert "expires_at" in cmd
    assert wait_status(api, a["id"], "sent")["status"] == "sent"
    ag.result(seq, a["id"], "running")
    assert wait_status(api, a["id"], "running")["status"] == "running"
    ag.result(seq, a["id"], "succeeded", {"isolation": "isolated"})
    done = wait_status(api, a["id"], "succeeded")
    assert done["output"] == {"isolation": "isolated"} and done["error"] is None
    assert [h["status"] for h in done["history"]] == ["queued", "sent", "running", "succeeded"]
    st, info = api.call("GET", "/v1/agents/resp-iso")
    assert st == 200, info
    assert info["isolation"]["desired"] == "isolated" and info["isolation"]["reported"] == "isolated"
    assert info["online"] is True and info["version"] == "pytest-1" and info["host"]["name"] == "H-resp-iso"
    ag.close()
    # every (re)connect carries the desired state
    ag = RespAgent(node, "resp-iso")
    assert ag.hello_caps(isolation="isolated")["isolation"] == "isolated"
    st, r = post(api, "resp-iso", "release")
    assert st == 201
    seq, cmd = ag.next_command()
    assert cmd["action"] == "release" and cmd["args"] == {} and seq == 2
    ag.result(seq, r["id"], "succeeded", {"isolation": "none"})
    wait_status(api, r["id"], "succeeded")
    ag.close()
    ag = RespAgent(node, "resp-iso")
    assert ag.hello_caps()["isolation"] == "none"
    ag.close()


def test_offline_queue_redelivery_after_reconnect(node):
    api = node["api"]
    ag = RespAgent(node, "resp-off")
    ag.hello_caps()
    ag.close()
    time.sleep(0.3)
    st, a = post(api, "resp-off", "list_processes")
    assert st == 201
    time.sleep(0.3)
    assert wait_status(api, a["id"], "queued")["status"] == "queued"
    ag = RespAgent(node, "resp-off")
    ag.hello_caps()
    seq, cmd = ag.next_command()
    assert cmd["id"] == a["id"]
    ag.result(seq, a["id"], "running")
    wait_status(api, a["id"], "running")
    ag.close()  # gone before the final result: sent again on the next connection
    ag = RespAgent(node, "resp-off")
    ag.hello_caps()
    seq2, cmd2 = ag.next_command()
    assert (seq2, cmd2["id"]) == (seq, a["id"])
    procs = {"processes": [{"pid": 1, "ppid": 0, "name": "init", "executable": "/sbin/init", "command_line": "init",
                            "entity_id": "e1", "user": "root"}]}
    ag.result(seq2, a["id"], "succeeded", procs)
    assert wait_status(api, a["id"], "succeeded")["output"] == procs
    # listing, newest first, and the status filter
    st, l = api.call("GET", "/v1/agents/resp-off/actions?status=succeeded")
    assert st == 200 and [x["id"] for x in l["actions"]] == [a["id"]]
    ag.close()


def test_agent_without_response_capability_gets_nothing(node):
    api = node["api"]
    ag = RespAgent(node, "resp-nocap")
    ag.hello_caps(caps=("zstd",))
    st, a = post(api, "resp-nocap", "list_processes")
    assert st == 201
    assert ag.next_command(timeout=1.0) is None
    assert wait_status(api, a["id"], "queued", timeout=1)["status"] == "queued"
    ag.close()


def test_fetch_file_chunks_verified_and_served(node):
    api = node["api"]
    ag = RespAgent(node, "resp-fetch")
    ag.hello_caps()
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    st, a = post(api, "resp-fetch", "fetch_file", {"path": "/sandbox/x.bin", "max_bytes": 500_000})
    assert st == 201, a
    seq, cmd = ag.next_command()
    assert cmd["args"] == {"path": "/sandbox/x.bin", "max_bytes": 500_000}
    ag.result(seq, a["id"], "running")
    for off in range(0, len(data), 100_000):
        ag.chunk(seq, data[off:off + 100_000], last=off + 100_000 >= len(data))
    ag.result(seq, a["id"], "succeeded", {"path": "/sandbox/x.bin", "size": len(data), "sha256": sha})
    done = wait_status(api, a["id"], "succeeded")
    assert done["output"]["sha256"] == sha
    st, body = api_bytes(api, "/v1/files/" + sha)
    assert st == 200 and body == data
    # a wrong sha256: the action fails, nothing is stored
    st, b = post(api, "resp-fetch", "fetch_file", {"path": "/sandbox/y.bin"})
    seq, _ = ag.next_command()
    other = b"hello world"
    ag.chunk(seq, other, last=True)
    ag.result(seq, b["id"], "succeeded", {"path": "/sandbox/y.bin", "size": len(other), "sha256": "0" * 64})
    failed = wait_status(api, b["id"], "failed")
    assert failed["status"] == "failed" and failed["error"].startswith("integrity check failed")
    st, _ = api_bytes(api, "/v1/files/" + hashlib.sha256(other).hexdigest())
    assert st == 404
    # an empty file is one empty last chunk
    st, c = post(api, "resp-fetch", "fetch_file", {"path": "/sandbox/empty"})
    seq, _ = ag.next_command()
    ag.chunk(seq, b"", last=True)
    ag.result(seq, c["id"], "succeeded", {"path": "/sandbox/empty", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()})
    assert wait_status(api, c["id"], "succeeded")["status"] == "succeeded"
    # chunks past max_bytes are a protocol violation: the connection ends, the action stays pending
    st, d = post(api, "resp-fetch", "fetch_file", {"path": "/sandbox/big", "max_bytes": 1000})
    seq, _ = ag.next_command()
    ag.chunk(seq, b"x" * 1001)
    closed = False
    deadline = time.time() + 10
    while time.time() < deadline:
        f = ag.recv_frame(timeout=2)
        if f is None or f[0] == 9:
            closed = True
            if f is not None:
                assert b"max_bytes" in f[3]
            break
    assert closed
    assert wait_status(api, d["id"], "sent", timeout=1)["status"] == "sent"
    ag.close()


def api_bytes(api, path):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(api.base + path, method="GET")
    req.add_header("Authorization", "Bearer " + api.admin)
    try:
        with urllib.request.urlopen(req, context=api.ctx, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_unexpected_results_are_ignored_and_chunks_outside_a_fetch_close(node):
    api = node["api"]
    ag = RespAgent(node, "resp-odd")
    ag.hello_caps()
    ag.result(999, "0" * 32, "succeeded", {})  # never sent: ignored
    ag.ping("none")  # the connection still works
    st, a = post(api, "resp-odd", "list_processes")
    seq, _ = ag.next_command()
    ag.result(seq, a["id"], "succeeded", {"processes": []})
    wait_status(api, a["id"], "succeeded")
    ag.result(seq, a["id"], "failed", error="late")  # already final: ignored
    ag.ping("none")
    assert wait_status(api, a["id"], "succeeded")["status"] == "succeeded"
    st, m = api.call("GET", "/metrics")
    assert "mamori_response_results_total" in m
    ag.chunk(seq, b"abc")  # not a fetch: violation
    f = ag.recv_frame(timeout=5)
    assert f is None or (f[0] == 9 and b"not a fetch_file" in f[3])
    ag.close()


def test_expiry_of_an_action_never_delivered(node):
    api = node["api"]
    ag = RespAgent(node, "resp-exp")
    ag.hello_caps()
    ag.close()
    st, a = post(api, "resp-exp", "list_processes", expires_in=1)
    assert st == 201
    done = wait_status(api, a["id"], "expired", timeout=10)
    assert done["status"] == "expired" and done["history"][-1]["status"] == "expired"
    # after expiry a reconnect brings nothing
    ag = RespAgent(node, "resp-exp")
    ag.hello_caps()
    assert ag.next_command(timeout=1.0) is None
    ag.close()


def test_isolation_drift_raises_one_alert(node):
    api = node["api"]
    ag = RespAgent(node, "resp-drift")
    ag.hello_caps()
    st, a = post(api, "resp-drift", "isolate")
    seq, _ = ag.next_command()
    ag.result(seq, a["id"], "failed", error="nftables not available")
    ag.ping("none")
    deadline = time.time() + 15
    alerts = []
    while time.time() < deadline and not alerts:
        st, r = api.call("GET", "/v1/alerts?rule=mamori-isolation-drift")
        alerts = [x for x in r["alerts"] if x["agent_id"] == "resp-drift"]
        time.sleep(0.2)
    assert len(alerts) == 1, alerts
    assert alerts[0]["isolation"]["desired"] == "isolated" and alerts[0]["isolation"]["reported"] == "none"
    time.sleep(2.5)  # the same episode: no second alert
    st, r = api.call("GET", "/v1/alerts?rule=mamori-isolation-drift")
    assert len([x for x in r["alerts"] if x["agent_id"] == "resp-drift"]) == 1
    ag.close()


def keys_for(api, role):
    st, r = api.call("POST", "/v1/keys", {"role": role, "name": "resp-" + role})
    assert st == 201, r
    return r["key"]


def test_api_roles_tenants_and_validation(node):
    api = node["api"]
    ag = RespAgent(node, "resp-val")
    ag.hello_caps()
    other = RespAgent(node, "resp-acme", tenant="acme")
    other.hello_caps()
    viewer, responder = keys_for(api, "viewer"), keys_for(api, "responder")
    st, r = post(api, "resp-val", "list_processes", key=viewer)
    assert st == 403, r
    st, r = post(api, "resp-val", "list_processes", key=responder)
    assert st == 201, r
    st, r2 = api.call("GET", "/v1/actions/" + r["id"], key=viewer)
    assert st == 200 and r2["id"] == r["id"]
    st, r = post(api, "resp-acme", "isolate")  # another tenant's agent
    assert st == 404, r
    st, r = post(api, "no-such-agent", "isolate")
    assert st == 404, r
    bad = [
        ({"action": "format_disk"}, "action"),
        ({"action": "kill_process"}, "pid"),
        ({"action": "kill_process", "args": {"pid": 1, "entity_id": "x"}}, "pid"),
        ({"action": "kill_process", "args": {"pid": "1"}}, "args.pid"),
        ({"action": "delete_file", "args": {}}, "args.path"),
        ({"action": "delete_file", "args": {"path": "relative/x"}}, "args.path"),
        ({"action": "list_dir", "args": {"path": "/sandbox/../etc"}}, "args.path"),
        ({"action": "fetch_file", "args": {"path": "/a\u0000b"}}, "args.path"),
        ({"action": "fetch_file", "args": {"path": "/a", "max_bytes": 1048577}}, "max_bytes"),
        ({"action": "list_dir", "args": {"path": "/a", "depth": 9}}, "args.depth"),
        ({"action": "delete_file", "args": {"path": "/a", "sha256": "xyz"}}, "args.sha256"),
        ({"action": "isolate", "args": {"allow": ["1.2.3.4:1"]}}, "args.allow"),
        ({"action": "isolate", "expires_in": 0}, "expires_in"),
        ({"action": "isolate", "expires_in": 604801}, "expires_in"),
        ({"action": "isolate", "extra": 1}, "extra"),
    ]
    for body, field in bad:
        st, r = api.call("POST", "/v1/agents/resp-val/actions", body)
        assert st == 400, (body, r)
        assert field in r["error"]["message"], (body, r)
    # nothing else disturbed: the agent still gets the good one
    seq, cmd = ag.next_command()
    assert cmd["action"] == "list_processes"
    # the audit log: admin only, filters
    st, r = api.call("GET", "/v1/audit", key=viewer)
    assert st == 403
    st, r = api.call("GET", "/v1/audit?agent=resp-val&action=action.create")
    assert st == 200 and r["entries"] and all(e["target"] == "resp-val" for e in r["entries"])
    st, r = api.call("GET", "/v1/audit?agent=resp-val&limit=1")
    assert st == 200 and len(r["entries"]) == 1 and "cursor" in r
    st, r2 = api.call("GET", "/v1/audit?agent=resp-val&limit=1&cursor=" + r["cursor"])
    assert st == 200 and r2["entries"] and r2["entries"][0] != r["entries"][0]
    st, r = api.call("GET", "/v1/audit?actor=nobody")
    assert st == 200 and r["entries"] == []
    ag.close()
    other.close()


def test_pending_limit_and_restart_keeps_desired_isolation(node):
    api = node["api"]
    ag = RespAgent(node, "resp-rst")
    ag.hello_caps()
    ag.close()
    time.sleep(0.2)
    st, a = post(api, "resp-rst", "isolate")
    assert st == 201
    other = RespAgent(node, "resp-rst-on")
    other.hello_caps(caps=("zstd",))
    time.sleep(0.5)
    node["srv"].kill9()  # a crash: the registry record still says online
    node["srv"].start()
    assert "agents recorded online by the previous run marked offline" in node["srv"].log()
    other.close()
    ag = RespAgent(node, "resp-rst")
    assert ag.hello_caps()["isolation"] == "isolated"
    seq, cmd = ag.next_command()
    assert cmd["id"] == a["id"]
    ag.close()


def test_mamorictl_waits_for_results(node, tmp_path):
    import subprocess
    from harness import MAMORICTL
    ag = RespAgent(node, "resp-ctl")
    ag.hello_caps()

    def ctl_bg(*args):
        return subprocess.Popen([MAMORICTL] + list(args[:1]) + ["--dev", node["dir"]] + list(args[1:]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)

    p = ctl_bg("ps", "resp-ctl")
    seq, cmd = ag.next_command()
    assert cmd["action"] == "list_processes"
    ag.result(seq, cmd["id"], "running")
    ag.result(seq, cmd["id"], "succeeded", {"processes": [{"pid": 4242, "ppid": 1, "name": "evil", "executable": "/tmp/evil",
                                                           "command_line": "/tmp/evil -x", "entity_id": "e", "user": "bob"}]})
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert b"4242" in out and b"/tmp/evil -x" in out
    # fetch saves the verified file
    dest = str(tmp_path / "got.bin")
    p = ctl_bg("fetch", "resp-ctl", "/sandbox/f.txt", "-o", dest)
    seq, cmd = ag.next_command()
    data = b"fetched bytes\n" * 100
    ag.chunk(seq, data, last=True)
    ag.result(seq, cmd["id"], "succeeded", {"path": "/sandbox/f.txt", "size": len(data),
                                             "sha256": hashlib.sha256(data).hexdigest()})
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert open(dest, "rb").read() == data
    # a failed kill exits 1 with the agent's reason
    p = ctl_bg("kill", "resp-ctl", "--pid", "999999")
    seq, cmd = ag.next_command()
    assert cmd["args"] == {"pid": 999999}
    ag.result(seq, cmd["id"], "failed", error="no such process: 999999")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1 and b"no such process" in err
    # the listing
    p = subprocess.run([MAMORICTL, "actions", "--dev", node["dir"], "resp-ctl"], stdout=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and p.stdout.count(b"\n") == 4  # header + 3
    assert b"kill_process" in p.stdout and b"failed" in p.stdout
    ag.close()


AUTO_RULE = """title: Evil binary started
id: 3f8c6c2e-0000-4000-8000-0000000000a1
status: test
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: '/evil'
  condition: selection
level: high
x-mamori:
  response: [kill_process, isolate]
"""


@contextlib.contextmanager
def auto_node(tmp_path, prefix, rules_text, *settings):
    """A node running rules_text with the given --set settings, as (node, api); stopped (it
    must exit cleanly) and removed afterwards."""
    d = temp_dir(prefix)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yml").write_text(rules_text)
    port, api_port = free_port(), free_port()
    extra = ["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0", "--set", "store.sync=false",
             "--rules", str(rules)]
    for x in settings:
        extra += ["--set", x]
    srv = Server(d, port=port, extra=extra).start()
    try:
        yield {"dir": d, "port": port}, Api(d, api_port)
    finally:
        rc = srv.stop()
        log = srv.log()
        shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, log[-3000:]


def test_automatic_response_policy_and_rate(tmp_path):
    with auto_node(tmp_path, "mamori-auto-", AUTO_RULE, "response.auto_allowed=[kill_process]",
                   "response.auto_max_per_minute=2") as (node, api):
        ag = RespAgent(node, "resp-auto")
        ag.hello_caps()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        lines = []
        for i in range(5):
            lines.append(json.dumps({"@timestamp": now, "event": {"category": ["process"], "type": ["start"]},
                                     "host": {"name": "H-auto", "os": {"type": "linux"}},
                                     "process": {"pid": 4000 + i, "entity_id": "ent-%d" % i, "executable": "/tmp/evil",
                                                 "name": "evil", "command_line": "/tmp/evil"}}))
        ag.send(frame(3, "\n".join(lines).encode(), seq=1))
        cmds = ag.commands(2)
        assert [c[1]["action"] for c in cmds] == ["kill_process", "kill_process"], cmds
        assert {c[1]["args"]["pid"] for c in cmds} <= {4000 + i for i in range(5)}
        st, a = api.call("GET", "/v1/actions/" + cmds[0][1]["id"])
        assert a["actor"] == "rule:3f8c6c2e-0000-4000-8000-0000000000a1"
        assert ag.next_command(timeout=2) is None  # the rate stopped the storm
        st, r = api.call("GET", "/v1/agents/resp-auto/actions")
        assert len(r["actions"]) == 2
        deadline = time.time() + 15
        sup = []
        while time.time() < deadline and not sup:
            st, al = api.call("GET", "/v1/alerts?rule=mamori-response-suppressed")
            sup = al["alerts"]
            time.sleep(0.2)
        assert sup and sup[0]["suppressed"]["requested_by"] == "3f8c6c2e-0000-4000-8000-0000000000a1"
        assert sup[0]["agent_id"] == "resp-auto"
        st, m = api.call("GET", "/metrics", key=False)
        vals = {l.rsplit(" ", 1)[0]: float(l.rsplit(" ", 1)[1]) for l in m.splitlines() if l and not l.startswith("#")}
        assert vals["mamori_response_auto_created_total"] == 2
        assert vals["mamori_response_auto_suppressed_total"] >= 3  # 5 isolate (not allowed) + 3 over the rate
        ag.close()


CORR_RULES = """title: Dropper then beacon
id: 3f8c6c2e-0000-4000-8000-0000000000b1
status: test
correlation:
  type: temporal_ordered
  rules: [dropper_start, beacon_conn]
  group-by: [host.name]
  timespan: 5m
level: critical
x-mamori:
  response: [kill_process, isolate]
---
title: Dropper started
name: dropper_start
status: test
logsource: {product: linux, category: process_creation}
detection:
  selection:
    Image|endswith: '/dropper'
  condition: selection
level: low
---
title: Beacon connection
name: beacon_conn
status: test
logsource: {product: linux, category: network_connection}
detection:
  selection:
    Image|endswith: '/beacon'
  condition: selection
level: low
"""


def test_correlation_alert_triggers_automatic_response(tmp_path):
    """A correlation's x-mamori response acts on the agent, and kill_process on the process, of
    the event that completed it; its base rules alone request nothing."""
    with auto_node(tmp_path, "mamori-auto-corr-", CORR_RULES,
                   "response.auto_allowed=[kill_process,isolate]") as (node, api):
        ag = RespAgent(node, "resp-corr")
        ag.hello_caps()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def ev(category, typ, pid, exe):
            return json.dumps({"@timestamp": now, "event": {"category": [category], "type": [typ]},
                               "host": {"name": "H-corr", "os": {"type": "linux"}},
                               "process": {"pid": pid, "entity_id": "ent-%d" % pid, "executable": exe,
                                           "name": exe.rsplit("/", 1)[1]}})
        # the first step alone: nothing
        ag.send(frame(3, ev("process", "start", 6000, "/tmp/dropper").encode(), seq=1))
        assert ag.next_command(timeout=3) is None
        # the second step completes the sequence: kill the beacon's process, isolate the host
        ag.send(frame(3, ev("network", "start", 6001, "/tmp/beacon").encode(), seq=2))
        cmds = ag.commands(2)
        got = {c[1]["action"]: c[1] for c in cmds}
        assert set(got) == {"kill_process", "isolate"}, cmds
        assert got["kill_process"]["args"]["pid"] == 6001
        st, a = api.call("GET", "/v1/actions/" + got["isolate"]["id"])
        assert st == 200 and a["actor"] == "rule:3f8c6c2e-0000-4000-8000-0000000000b1", a
        st, al = api.call("GET", "/v1/alerts?rule=3f8c6c2e-0000-4000-8000-0000000000b1")
        assert st == 200 and len(al["alerts"]) == 1, al
        assert ag.next_command(timeout=2) is None
        ag.close()


def test_zstd_results_oversize_results_and_isolation_capability(node):
    from harness import zstd_compress
    api = node["api"]
    ag = RespAgent(node, "resp-zstd")
    ag.hello_caps(caps=("zstd", "response"))  # no "isolation": isolate stays queued
    st, iso = post(api, "resp-zstd", "isolate")
    assert st == 201
    st, a = post(api, "resp-zstd", "list_processes")
    seq, cmd = ag.next_command()
    assert cmd["id"] == a["id"]  # isolate was skipped
    procs = {"processes": [{"pid": i, "name": "p%d" % i} for i in range(200)]}
    body = json.dumps({"id": a["id"], "status": "succeeded", "output": procs}).encode()
    ag.send(frame(RESULT, zstd_compress(body), seq=seq, flags=0x01))
    assert wait_status(api, a["id"], "succeeded")["output"] == procs
    # a RESULT over response.max_output_bytes (4 MiB) fails its action; the connection stays
    st, b = post(api, "resp-zstd", "list_dir", {"path": "/big"})
    seq, _ = ag.next_command()
    huge = json.dumps({"id": b["id"], "status": "succeeded",
                       "output": {"path": "/big", "entries": ["x" * 1000] * 5000}}).encode()
    ag.send(frame(RESULT, zstd_compress(huge), seq=seq, flags=0x01))
    failed = wait_status(api, b["id"], "failed")
    assert "max_output_bytes" in failed["error"]
    ag.ping("none")
    assert wait_status(api, iso["id"], "queued", timeout=1)["status"] == "queued"
    ag.close()

"""Response actions end to end (issue 7, docs/response.md): POST /v1/agents/{id}/actions
through the real server to a real simulator acting on a real sandbox — the killed process
is gone from /proc, the deleted file is gone (a wrong expected sha256 refuses), the
fetched bytes and sha256 match and are served by GET /v1/files/{sha256}, listings match
the sandbox; an offline agent's action queues and is delivered when it connects, or
expires; bad input gets a clear 400 or a failed action naming the reason and disturbs
nothing; a viewer cannot act and another tenant's agent and actions are invisible (404).
Isolation with nftables in a network namespace: test_response_isolation.py; the server's
side with a scripted test agent: test_response.py."""
import json
import os
import subprocess
import time

import pytest

from harness import MAMORICTL, Server, free_port, temp_dir
from response_helpers import Api, SimProcess, make_sandbox, response_missing, sha256, sim_cmd

AGENT = "resp-00000"
FINAL = ("succeeded", "failed", "expired")


def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    out.append(int(p))
            except (OSError, IndexError):
                pass
    return sorted(out)


def start_agent(d, prefix, *extra, tenant=None):
    args = ["--agents", 1, "--agent-prefix", prefix, "--duration", 1200, "--rate", 2, "--progress-ms", 0]
    if tenant:
        args += ["--tenant", tenant]
    return SimProcess(sim_cmd(d, *(args + list(extra))))


def wait_online(api, agent, key=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, r = api.call("GET", "/v1/agents/" + agent, key=key)
        if st == 200 and r.get("online"):
            return r
        time.sleep(0.1)
    raise AssertionError("agent %s not online within %ss" % (agent, timeout))


@pytest.fixture(scope="module")
def node():
    d = temp_dir("mamori-resp-")
    api_port = free_port()
    srv = Server(d, extra=["--api-port", str(api_port), "--set", "api.rate_limit_per_key=0",
                           "--set", "store.sync=false"])
    # an admin of a second tenant, made offline before the server holds the store
    srv.start().stop()
    p = subprocess.run([MAMORICTL, "keys", "create", "--data", os.path.join(d, "data"), "--tenant", "acme",
                        "--role", "admin", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    acme = json.loads(p.stdout)["key"]
    srv.start()
    api = Api(d, api_port)
    why = response_missing(api)
    if why:
        srv.stop()
        pytest.skip(why)
    root = os.path.realpath(temp_dir("mamori-resp-sandbox-"))
    files = make_sandbox(root)
    agent = start_agent(d, "resp", "--sandbox", root, "--sandbox-procs", 4)
    acme_agent = start_agent(d, "acme", "--sandbox", root, tenant="acme")
    try:
        wait_online(api, AGENT)
        wait_online(api, "acme-00000", key=acme)
        yield {"srv": srv, "api": api, "dir": d, "root": root, "files": files, "sim": agent, "acme": acme}
    finally:
        for s in (agent, acme_agent):
            s.stop()
        srv.stop()


def statuses(rec):
    return [h["status"] for h in rec["history"]]


def test_list_and_kill_processes(node):
    api, sim = node["api"], node["sim"]
    rec = api.run(AGENT, "list_processes")
    assert rec["status"] == "succeeded", rec
    assert statuses(rec)[:2] == ["queued", "sent"] and statuses(rec)[-1] == "succeeded"
    assert rec["actor"].startswith("key:") and rec["agent"] == AGENT and rec["tenant"] == "default"
    procs = rec["output"]["processes"]
    kids = children_of(sim.proc.pid)
    assert len(kids) == 4
    assert sorted(p["pid"] for p in procs) == sorted(kids + [sim.proc.pid])  # the listing is the real one
    victim = next(p for p in procs if p["pid"] == kids[0])
    rec = api.run(AGENT, "kill_process", {"pid": victim["pid"]})
    assert rec["status"] == "succeeded" and rec["output"] == {"pid": victim["pid"], "killed": True}, rec
    assert not os.path.exists("/proc/%d" % victim["pid"])
    by_entity = next(p for p in procs if p["pid"] == kids[1])
    rec = api.run(AGENT, "kill_process", {"entity_id": by_entity["entity_id"]})
    assert rec["status"] == "succeeded" and rec["output"]["pid"] == kids[1], rec
    assert not os.path.exists("/proc/%d" % kids[1])
    # a process the agent did not start is refused and survives
    rec = api.run(AGENT, "kill_process", {"pid": 1})
    assert rec["status"] == "failed" and "not started by this agent" in rec["error"], rec
    assert os.path.exists("/proc/1") and sim.alive()
    assert children_of(sim.proc.pid) == kids[2:]


def test_delete_file(node):
    api, root, files = node["api"], node["root"], node["files"]
    victim = root + "/victim.txt"
    rec = api.run(AGENT, "delete_file", {"path": victim, "sha256": "ab" * 32})
    assert rec["status"] == "failed" and "sha256 mismatch" in rec["error"], rec
    assert os.path.exists(victim)
    rec = api.run(AGENT, "delete_file", {"path": victim, "sha256": sha256(files["victim.txt"])})
    assert rec["status"] == "succeeded", rec
    assert rec["output"] == {"path": victim, "deleted": True, "sha256": sha256(files["victim.txt"])}
    assert not os.path.exists(victim)
    rec = api.run(AGENT, "delete_file", {"path": victim})
    assert rec["status"] == "failed" and "no such file" in rec["error"], rec


def test_fetch_file(node):
    api, root, files = node["api"], node["root"], node["files"]
    blob = files["big/blob.bin"]  # 3 MiB + : four chunks
    rec = api.run(AGENT, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 8 << 20}, timeout=60)
    assert rec["status"] == "succeeded", rec
    assert rec["output"] == {"path": root + "/big/blob.bin", "size": len(blob), "sha256": sha256(blob)}
    st, data = api.call("GET", "/v1/files/" + sha256(blob), raw=True)
    assert st == 200 and data == blob
    # the empty file
    rec = api.run(AGENT, "fetch_file", {"path": root + "/tmp/empty.bin", "max_bytes": 1024})
    assert rec["status"] == "succeeded" and rec["output"]["size"] == 0
    st, data = api.call("GET", "/v1/files/" + sha256(b""), raw=True)
    assert st == 200 and data == b""
    # bigger than max_bytes: the agent refuses before sending, nothing stored
    rec = api.run(AGENT, "fetch_file", {"path": root + "/docs/report.txt", "max_bytes": 10})
    assert rec["status"] == "failed" and rec["error"] == "file is %d bytes, over max_bytes 10" % len(
        files["docs/report.txt"]), rec
    assert api.call("GET", "/v1/files/" + sha256(files["docs/report.txt"]))[0] == 404


def test_list_dir_matches_the_sandbox(node):
    api, root = node["api"], node["root"]
    rec = api.run(AGENT, "list_dir", {"path": root, "depth": 8})
    assert rec["status"] == "succeeded", rec
    out = rec["output"]
    assert out["truncated"] is False
    expect = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            expect[p] = "symlink" if os.path.islink(p) else "dir" if os.path.isdir(p) else "file"
    got = {e["path"]: e["type"] for e in out["entries"]}
    assert got == expect
    sizes = {e["path"]: e["size"] for e in out["entries"] if e["type"] == "file"}
    assert all(sizes[p] == os.path.getsize(p) for p in sizes)


def test_bad_input_is_refused_clearly_and_disturbs_nothing(node):
    api, root = node["api"], node["root"]
    st, before = api.call("GET", "/v1/agents/%s/actions?limit=1000" % AGENT)
    assert st == 200
    refused = [
        ({"action": "format_disk", "args": {}}, "action"),
        ({"action": "fetch_file", "args": {}}, "path"),
        ({"action": "fetch_file", "args": {"path": 42, "max_bytes": 10}}, "path"),
        ({"action": "list_dir", "args": {"path": "docs"}}, "path"),  # relative
        ({"action": "list_dir", "args": {"path": root + "/../../etc"}}, "path"),
        ({"action": "fetch_file", "args": {"path": root + "/docs/../../../etc/passwd", "max_bytes": 10}}, "path"),
        ({"action": "delete_file", "args": {"path": root + "/a\u0000b"}}, "path"),
        ({"action": "kill_process", "args": {}}, "pid"),
        ({"action": "fetch_file", "args": {"path": root + "/docs/report.txt", "max_bytes": 1 << 62}}, "max_bytes"),
        ({"action": "list_dir", "args": {"path": root}, "expires_in": 0}, "expires_in"),
        ({"action": "list_dir", "args": {"path": root}, "expires_in": 7 * 86400 + 1}, "expires_in"),
    ]
    for body, field in refused:
        st, r = api.call("POST", "/v1/agents/%s/actions" % AGENT, body)
        assert st == 400, (body, st, r)
        assert field in r["error"]["message"], (body, r)
    st, after = api.call("GET", "/v1/agents/%s/actions?limit=1000" % AGENT)
    assert len(after["actions"]) == len(before["actions"])  # nothing was created
    # what only the agent can judge: paths outside its permitted root, through a symlink too
    passwd = open("/etc/passwd", "rb").read()
    for action, args in (("fetch_file", {"path": "/etc/passwd", "max_bytes": 1 << 20}),
                         ("fetch_file", {"path": root + "/outside-abs", "max_bytes": 1 << 20}),
                         ("list_dir", {"path": root + "/docs/etc-dir"}),
                         ("delete_file", {"path": root + "/outside-rel"}),
                         ("list_dir", {"path": "/"})):
        rec = api.run(AGENT, action, args)
        assert rec["status"] == "failed", rec
        assert rec["error"].startswith("path outside permitted roots: "), rec
    assert open("/etc/passwd", "rb").read() == passwd
    # the agent and the server carry on
    assert wait_online(api, AGENT)
    assert api.run(AGENT, "list_dir", {"path": root})["status"] == "succeeded"
    assert node["srv"].alive() and node["sim"].alive()


def test_authorization(node):
    api, acme = node["api"], node["acme"]
    st, viewer = api.call("POST", "/v1/keys", {"role": "viewer", "name": "resp-viewer"})
    assert st == 201, viewer
    st, responder = api.call("POST", "/v1/keys", {"role": "responder", "name": "resp-responder"})
    assert st == 201, responder
    st, r = api.act(AGENT, "list_processes", key=viewer["key"])
    assert st == 403, r
    st, rec = api.act(AGENT, "list_processes", key=responder["key"])
    assert st == 201, rec
    assert api.wait_action(rec["id"], key=viewer["key"])["status"] == "succeeded"  # a viewer reads
    # another tenant sees neither the agent nor its actions
    st, r = api.act(AGENT, "list_processes", key=acme)
    assert st == 404, r
    assert api.call("GET", "/v1/actions/" + rec["id"], key=acme)[0] == 404
    assert api.call("GET", "/v1/agents/%s/actions" % AGENT, key=acme)[0] == 404
    # and its own agent works for it
    st, own = api.act("acme-00000", "list_processes", key=acme)
    assert st == 201, own
    assert api.wait_action(own["id"], key=acme)["status"] == "succeeded"
    assert api.call("GET", "/v1/actions/" + own["id"])[0] == 404


def test_offline_agent_queue_deliver_expire(node):
    api, d, root = node["api"], node["dir"], node["root"]
    # an agent that connected once, then went away
    sim = start_agent(d, "away", "--sandbox", root)
    wait_online(api, "away-00000")
    sim.stop()
    deadline = time.time() + 10
    while api.call("GET", "/v1/agents/away-00000")[1].get("online") and time.time() < deadline:
        time.sleep(0.1)
    st, keep = api.act("away-00000", "list_dir", {"path": root}, expires_in=600)
    assert st == 201 and keep["status"] == "queued", keep
    st, lapse = api.act("away-00000", "list_dir", {"path": root + "/docs"}, expires_in=1)
    assert st == 201 and lapse["status"] == "queued", lapse
    time.sleep(3)
    assert api.call("GET", "/v1/actions/" + keep["id"])[1]["status"] == "queued"
    assert api.wait_action(lapse["id"], timeout=60)["status"] == "expired"
    # it comes back: the queued action is delivered and runs, the expired one never does
    sim = start_agent(d, "away", "--sandbox", root)
    try:
        rec = api.wait_action(keep["id"], timeout=60)
        assert rec["status"] == "succeeded" and statuses(rec)[0] == "queued", rec
        assert api.call("GET", "/v1/actions/" + lapse["id"])[1]["status"] == "expired"
    finally:
        s = sim.stop()
    assert s["response"]["commands"] == 1, s


def test_isolation_is_desired_state_across_agent_restarts(node):
    """isolate for an offline agent: queued; on connect WELCOME already says isolated and
    the command follows. A fresh agent process (no memory of it) is told again by WELCOME,
    reports it, and gets no command; release brings both states back to none."""
    api, d = node["api"], node["dir"]
    sim = start_agent(d, "conv")
    wait_online(api, "conv-00000")
    sim.stop()
    api.wait_agent("conv-00000", lambda r: not r.get("online"), 10, "offline")
    st, rec = api.act("conv-00000", "isolate")
    assert st == 201 and rec["status"] == "queued", rec
    assert api.agent("conv-00000")["isolation"]["desired"] == "isolated"
    sim = start_agent(d, "conv")
    try:
        assert api.wait_action(rec["id"], timeout=30)["status"] == "succeeded"
        api.wait_agent("conv-00000", lambda r: r["isolation"]["reported"] == "isolated", 10, "reported isolated")
    finally:
        s = sim.stop()
    assert s["response"]["isolated_at_end"] == 1, s
    # a new process starts with nothing enforced: WELCOME converges it, no command needed
    sim = start_agent(d, "conv")
    try:
        wait_online(api, "conv-00000")
        api.wait_agent("conv-00000", lambda r: r["isolation"]["reported"] == "isolated", 10, "reported isolated")
        assert api.agent("conv-00000")["isolation"]["drift"] is False
        rec = api.run("conv-00000", "release")
        assert rec["status"] == "succeeded" and rec["output"] == {"isolation": "none"}, rec
        iso = api.wait_agent("conv-00000", lambda r: r["isolation"]["reported"] == "none", 10, "reported none")
        assert iso["isolation"]["desired"] == "none"
    finally:
        s = sim.stop()
    assert s["response"]["commands"] == 1 and s["response"]["isolated_at_end"] == 0, s

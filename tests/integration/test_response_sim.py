"""The simulator's side of response actions (docs/response.md §2), against a throwaway
ingest peer that sends COMMAND frames itself: every action executed for real on the
sandbox (real child processes, a real directory tree), the RESULT sequence (running, then
one final), fetch_file chunks (≤ 1 MiB, flags 0x08/0x10) with size and sha256, path
confinement (`..`, absolute and relative symlinks, paths outside), idempotency by action
id across a reconnect, WELCOME.isolation and heartbeat reports, and nftables isolation in
a network namespace. The same actions through the real server: test_response.py."""
import os
import signal
import time

import pytest

from harness import Server, temp_dir
from response_helpers import (FLAG_CHUNK, FLAG_LAST, EchoService, FakeIngest, NetNS, SimProcess, make_sandbox,
                              netns_unavailable, sha256, sim_cmd)


@pytest.fixture(scope="module")
def dev():
    """A dev directory with the development PKI (made by mamorid --dev, then stopped)."""
    d = temp_dir("mamori-resp-sim-")
    Server(d).start().stop()
    return d


@pytest.fixture
def sandbox():
    root = os.path.realpath(temp_dir("mamori-sandbox-"))
    files = make_sandbox(root)
    return root, files


def start_sim(dev, ingest, *extra):
    return SimProcess(sim_cmd(dev, "--server", "%s:%d" % (ingest.host, ingest.port), "--agents", 1, "--idle",
                              "--duration", 600, "--progress-ms", 0, *extra))


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


def test_every_action_for_real(dev, sandbox):
    root, files = sandbox
    with FakeIngest(dev) as ingest:
        sim = start_sim(dev, ingest, "--sandbox", root, "--sandbox-procs", 3)
        try:
            c = ingest.accept()
            assert {"response", "isolation"} <= set(c.hello["capabilities"])
            assert c.hello["isolation"] == "none"

            # list_processes: the simulator and its three real children, from /proc
            st, r, _, _ = c.run(1, "list_processes")
            assert st == ["running", "succeeded"]
            procs = r["output"]["processes"]
            kids = children_of(sim.proc.pid)
            assert len(kids) == 3
            assert sorted(p["pid"] for p in procs if p["ppid"] == sim.proc.pid) == kids
            assert any(p["pid"] == sim.proc.pid for p in procs)
            for p in procs:
                assert set(p) == {"pid", "ppid", "name", "executable", "command_line", "entity_id", "user"}
            sleeper = next(p for p in procs if p["pid"] == kids[0])
            assert sleeper["name"] == "sleep" and sleeper["command_line"].startswith("sleep ")
            assert sleeper["user"] == "root" and sleeper["executable"].endswith("sleep")

            # kill_process by pid: the process is gone from /proc
            st, r, _, _ = c.run(2, "kill_process", {"pid": kids[0]})
            assert r["status"] == "succeeded" and r["output"] == {"pid": kids[0], "killed": True}, r
            assert not os.path.exists("/proc/%d" % kids[0])
            # by entity_id
            other = next(p for p in procs if p["pid"] == kids[1])
            st, r, _, _ = c.run(3, "kill_process", {"entity_id": other["entity_id"]})
            assert r["output"] == {"pid": kids[1], "killed": True}, r
            assert not os.path.exists("/proc/%d" % kids[1])
            assert children_of(sim.proc.pid) == [kids[2]]
            # not ours: refused, nothing killed
            for seq, args, why in ((4, {"pid": sim.proc.pid}, "the agent itself"), (5, {"pid": 1}, "not started"),
                                   (6, {"pid": kids[0]}, "not started"), (7, {"entity_id": "sim-1-1"}, "entity_id"),
                                   (8, {}, "pid or entity_id"), (9, {"pid": "12"}, "args.pid")):
                _, r, _, _ = c.run(seq, "kill_process", args)
                assert r["status"] == "failed" and why in r["error"], (args, r)
            assert sim.alive() and os.path.exists("/proc/1")

            # list_dir: what is on disk, depth 1 and deeper
            _, r, _, _ = c.run(10, "list_dir", {"path": root, "depth": 1})
            out = r["output"]
            assert out["path"] == root and out["truncated"] is False
            names = {e["path"]: e for e in out["entries"]}
            assert set(names) == {os.path.join(root, n) for n in os.listdir(root)}
            assert names[os.path.join(root, "victim.txt")]["type"] == "file"
            assert names[os.path.join(root, "victim.txt")]["size"] == len(files["victim.txt"])
            assert names[os.path.join(root, "docs")]["type"] == "dir"
            assert names[os.path.join(root, "outside-abs")]["type"] == "symlink"
            _, r, _, _ = c.run(11, "list_dir", {"path": root + "/docs", "depth": 8})
            expect = set()
            for dirpath, dirnames, filenames in os.walk(root + "/docs"):
                expect |= {os.path.join(dirpath, n) for n in dirnames + filenames}
            assert {e["path"] for e in r["output"]["entries"]} == expect
            assert all(e["mtime"].endswith("Z") for e in r["output"]["entries"])

            # fetch_file: 3 MiB + in four chunks of at most 1 MiB, the last flagged, then size + sha256
            blob = files["big/blob.bin"]
            st, r, data, chunks = c.run(12, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 10 << 20})
            assert st == ["running", "succeeded"]
            assert data == blob
            assert [fl for fl, _ in chunks] == [FLAG_CHUNK] * 3 + [FLAG_CHUNK | FLAG_LAST]
            assert r["output"] == {"path": root + "/big/blob.bin", "size": len(blob), "sha256": sha256(blob)}
            # an empty file is one empty last chunk
            _, r, data, chunks = c.run(13, "fetch_file", {"path": root + "/tmp/empty.bin", "max_bytes": 10})
            assert chunks == [(FLAG_CHUNK | FLAG_LAST, 0)] and r["output"]["size"] == 0
            assert r["output"]["sha256"] == sha256(b"")
            # over max_bytes: refused before sending
            _, r, data, chunks = c.run(14, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 1000})
            assert r["status"] == "failed" and not chunks
            assert r["error"] == "file is %d bytes, over max_bytes 1000" % len(blob)
            # a symlink that stays inside is followed
            _, r, data, _ = c.run(15, "fetch_file", {"path": root + "/inside-link", "max_bytes": 1 << 20})
            assert data == files["docs/report.txt"] and r["output"]["sha256"] == sha256(data)

            # delete_file: a wrong sha256 refuses and deletes nothing; the right one deletes
            victim = root + "/victim.txt"
            _, r, _, _ = c.run(16, "delete_file", {"path": victim, "sha256": "0" * 64})
            assert r["status"] == "failed" and "sha256 mismatch" in r["error"] and "nothing deleted" in r["error"]
            assert os.path.exists(victim)
            _, r, _, _ = c.run(17, "delete_file", {"path": victim, "sha256": sha256(files["victim.txt"]).upper()})
            assert r["output"] == {"path": victim, "deleted": True, "sha256": sha256(files["victim.txt"])}, r
            assert not os.path.exists(victim)
            _, r, _, _ = c.run(18, "delete_file", {"path": root + "/tmp/dropper.exe"})
            assert r["status"] == "succeeded" and not os.path.exists(root + "/tmp/dropper.exe")
            _, r, _, _ = c.run(19, "delete_file", {"path": victim})
            assert r["status"] == "failed" and r["error"] == "no such file or directory: " + victim
            _, r, _, _ = c.run(20, "delete_file", {"path": root + "/docs"})
            assert r["status"] == "failed" and "not a regular file" in r["error"]
            assert os.path.isdir(root + "/docs")

            # confinement: outside the root, by name, by `..`, through absolute and relative symlinks
            passwd = open("/etc/passwd", "rb").read()
            outside = ["/etc/passwd", root + "/../../etc/passwd", root + "/docs/../../etc/passwd",
                       root + "/outside-abs", root + "/outside-rel", root + "/docs/etc-dir/passwd",
                       root + "x/file", "/", root + "/docs/deep/../../../"]
            seq = 30
            for path in outside:
                for action, args in (("fetch_file", {"path": path, "max_bytes": 1 << 20}),
                                     ("list_dir", {"path": path}), ("delete_file", {"path": path})):
                    seq += 1
                    _, r, data, chunks = c.run(seq, action, args)
                    assert r["status"] == "failed", (action, path, r)
                    assert r["error"].startswith("path outside permitted roots: "), (action, path, r)
                    assert not chunks
            assert open("/etc/passwd", "rb").read() == passwd
            # `..` that stays inside is fine
            _, r, data, _ = c.run(90, "fetch_file", {"path": root + "/docs/deep/../report.txt", "max_bytes": 1 << 20})
            assert r["status"] == "succeeded" and data == files["docs/report.txt"]

            # bad input: clear errors, the agent goes on
            for seq, action, args, why in ((91, "format_disk", {}, "unknown action 'format_disk'"),
                                           (92, "fetch_file", {}, "args.path"),
                                           (93, "list_dir", {"path": 7}, "args.path"),
                                           (94, "list_dir", {"path": root, "depth": 9}, "depth"),
                                           (95, "delete_file", {"path": root + "/docs/report.txt", "sha256": "abc"},
                                            "args.sha256"),
                                           (96, "fetch_file", {"path": "relative/x", "max_bytes": 1}, "outside")):
                _, r, _, _ = c.run(seq, action, args)
                assert r["status"] == "failed" and why in r["error"], (action, args, r)
            c.raw_command(97, b"[1,2]")
            _, r, _, _ = c.result(97)
            assert r["status"] == "failed" and "bad COMMAND" in r["error"]
            _, r, _, _ = c.run(98, "list_dir", {"path": root}, expires_at="2001-01-01T00:00:00Z")
            assert r["status"] == "failed" and "expired" in r["error"]

            # idempotent by id: answered with the same final result, not executed again
            _, r, _, _ = c.run(99, "list_processes")
            assert {p["pid"] for p in r["output"]["processes"]} == {sim.proc.pid, kids[2]}
            aid = c.command(100, "kill_process", {"pid": kids[2]})
            _, first, _, _ = c.result(100)
            assert first["status"] == "succeeded"
            c.command(100, "kill_process", {"pid": kids[2]}, action_id=aid)
            st, again, _, _ = c.result(100)
            assert st == ["succeeded"] and again == first  # no "running": not run again
            # a fetch answered again sends its chunks again
            aid = c.command(101, "fetch_file", {"path": root + "/docs/report.txt", "max_bytes": 1 << 20})
            _, first, data1, _ = c.result(101)
            c.command(101, "fetch_file", {"path": root + "/docs/report.txt", "max_bytes": 1 << 20}, action_id=aid)
            _, again, data2, _ = c.result(101)
            assert data1 == data2 == files["docs/report.txt"] and again == first
        finally:
            s = sim.stop()
        assert s["response"]["repeated"] == 2, s
        assert s["protocol_errors"] == 0, s["_stderr"][-2000:]
        # the simulator took its children with it
        assert children_of(sim.proc.pid) == []


def test_commands_in_order_behind_a_transfer_and_redelivery(dev, sandbox):
    """Commands that arrive while a file is being sent wait their turn; a connection
    that breaks mid-transfer drops it, and the server's redelivery runs it (once)."""
    root, files = sandbox
    with FakeIngest(dev) as ingest:
        sim = start_sim(dev, ingest, "--sandbox", root)
        try:
            c = ingest.accept()
            c.command(1, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 10 << 20})
            victim_id = c.command(2, "delete_file", {"path": root + "/victim.txt"})
            c.command(3, "list_dir", {"path": root + "/tmp"})
            _, r1, data, _ = c.result(1)
            assert data == files["big/blob.bin"] and r1["status"] == "succeeded"
            _, r2, _, _ = c.result(2)
            assert r2["status"] == "succeeded" and not os.path.exists(root + "/victim.txt")
            _, r3, _, _ = c.result(3)
            assert r3["status"] == "succeeded"
            # the server restarts: same actions delivered again on the new connection
            c.close()
            c2 = ingest.accept()
            c2.command(2, "delete_file", {"path": root + "/victim.txt"}, action_id=victim_id)
            st, again, _, _ = c2.result(2)
            assert st == ["succeeded"] and again == r2  # not "no such file": not executed twice
            # a transfer broken off is dropped, then done again when delivered again
            fid = c2.command(4, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 10 << 20})
            time.sleep(0.05)
            c2.close()
            c3 = ingest.accept()
            c3.command(4, "fetch_file", {"path": root + "/big/blob.bin", "max_bytes": 10 << 20}, action_id=fid)
            _, r4, data, _ = c3.result(4)
            assert r4["status"] == "succeeded" and data == files["big/blob.bin"]
        finally:
            s = sim.stop()
        assert s["reconnects"] == 2 and s["response"]["repeated"] >= 1, s


def test_isolation_state_welcome_and_heartbeats(dev):
    """Without --isolation nft, isolation is state: applied from WELCOME, reported at
    once in a heartbeat and in the next HELLO, changed by isolate/release."""
    with FakeIngest(dev) as ingest:
        sim = start_sim(dev, ingest)
        try:
            c = ingest.accept(isolation="isolated")
            assert c.hello["isolation"] == "none"
            deadline = time.time() + 5
            while not c.pings and time.time() < deadline:
                time.sleep(0.02)
            assert c.pings and c.pings[0]["isolation"] == "isolated"
            c.close()
            c = ingest.accept(isolation="isolated", heartbeat_ms=200)
            assert c.hello["isolation"] == "isolated"  # the agent kept it across the reconnect
            _, r, _, _ = c.run(1, "release", {})
            assert r["output"] == {"isolation": "none"}
            time.sleep(0.6)
            assert c.pings[-1]["isolation"] == "none"
            _, r, _, _ = c.run(2, "isolate", {"allow": ["127.0.0.1:1", "not-an-endpoint"]})
            assert r["output"] == {"isolation": "isolated"}
            time.sleep(0.6)
            assert c.pings[-1]["isolation"] == "isolated"
        finally:
            s = sim.stop()
        assert s["response"]["isolated_at_end"] == 1 and s["response"]["isolation_changes"] == 3, s


@pytest.fixture
def netns():
    why = netns_unavailable()
    if why:
        pytest.skip(why)
    ns = NetNS()
    try:
        yield ns
    finally:
        ns.close()


def test_nft_isolation_in_a_namespace(dev, netns):
    """--isolation nft in its own network namespace: isolate lets only the ingest peer
    through, release opens everything again, and isolation outlives the simulator."""
    with FakeIngest(dev, host=netns.host_ip) as ingest, EchoService(netns.host_ip) as other:
        cmd = sim_cmd(dev, "--server", "%s:%d" % (netns.host_ip, ingest.port), "--server-name", "127.0.0.1",
                      "--agents", 1, "--idle", "--duration", 600, "--progress-ms", 0, "--isolation", "nft")
        sim = SimProcess(netns.popen(cmd))
        try:
            c = ingest.accept()
            assert c.hello["isolation"] == "none"
            assert netns.reach(netns.host_ip, other.port) and netns.reach(netns.host_ip, ingest.port)
            _, r, _, _ = c.run(1, "isolate", {"allow": ["%s:%d" % (netns.host_ip, ingest.port)]})
            assert r["output"] == {"isolation": "isolated"}, r
            assert "mamori_isolation" in netns.nft_tables()
            assert not netns.reach(netns.host_ip, other.port)
            assert netns.reach(netns.host_ip, ingest.port)  # new connections to Mamori too
            _, r, _, _ = c.run(2, "list_processes")  # actions still work over the connection
            assert r["status"] == "succeeded"
            # the simulator restarts while isolated: still isolated, and says so
            sim.stop()
            c.close()
            sim = SimProcess(netns.popen(cmd))
            c = ingest.accept(isolation="isolated")
            assert c.hello["isolation"] == "isolated"
            assert not netns.reach(netns.host_ip, other.port)
            _, r, _, _ = c.run(3, "release", {})
            assert r["output"] == {"isolation": "none"}
            assert "mamori_isolation" not in netns.nft_tables()
            assert netns.reach(netns.host_ip, other.port)
            # WELCOME converges: a server that wants isolation gets it on connect
            c.close()
            c = ingest.accept(isolation="isolated")
            deadline = time.time() + 5
            while "mamori_isolation" not in netns.nft_tables() and time.time() < deadline:
                time.sleep(0.05)
            assert not netns.reach(netns.host_ip, other.port)
            _, r, _, _ = c.run(4, "release", {})
            assert netns.reach(netns.host_ip, other.port)
        finally:
            sim.stop()

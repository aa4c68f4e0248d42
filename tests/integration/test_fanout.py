"""Fan-out search over store shards (docs/scaling.md 6), on a real broker: one ingest
process, two store shards (bus.kafka.store_shards=2), one detect worker, and next to them a
single-node store reading the same topic in a consumer group of its own (every partition:
the same events with the same ids). An API process with api.shards = the two shards must
answer every search exactly as the single-node store does: the same rows in the same
order, the same pages, counts, count-by groups and sequences; GET /v1/events/{id} from the
shard that has it; GET /v1/alerts the shards' alerts merged newest first. A shard that is
down is a 502 naming it, a bad cursor a 400, a bad api.shards item a refused
configuration naming it."""
import hashlib
import os
import shutil
import subprocess
import time
import urllib.parse

import pytest

from harness import MAMORID, KafkaBroker, Server, free_port, sim, stop_all, temp_dir
from test_api import Api
from test_response import RespAgent, api_bytes, wait_status

AGENTS = 16
EVENTS = 1500
TOPIC = "fanout.events"
RULE = """title: cmd.exe started
id: 5d0a3c1e-77b2-4f0e-8d3e-6b7f2f9e1a42
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
FROM, TO = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def cluster():
    base = temp_dir("mamori-it-fanout-")
    broker = KafkaBroker(os.path.realpath(os.path.join(base, "kafka")))
    procs = []
    try:
        boot = broker.start().bootstrap
    except Exception:
        shutil.rmtree(base, ignore_errors=True)
        raise

    def node(name, roles, prefix, *extra):
        s = Server(os.path.join(base, name), extra=["--roles", roles, "--bus", "kafka", "--kafka-bootstrap", boot,
                                                     "--set", "bus.kafka.topic=" + TOPIC,
                                                     "--set", "bus.kafka.group_prefix=" + prefix,
                                                     "--set", "bus.kafka.alerts_topic=fanout.alerts",
                                                     "--set", "api.rate_limit_per_key=0"] + list(extra))
        procs.append(s)
        return s

    try:
        rules = os.path.join(base, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "cmd.yml"), "w") as f:
            f.write(RULE)
        ingest = node("ingest", "ingest", "fo-")
        shards = [node("store%d" % i, "store", "fo-", "--set", "bus.kafka.store_shards=2",
                       "--set", "bus.kafka.store_shard=%d" % i) for i in range(2)]
        single = node("single", "store", "fo1-")  # every partition, a group of its own
        detect = node("detect", "detect", "fo-", "--rules", rules)
        urls = ["https://127.0.0.1:%d" % s.api_port for s in shards]
        api_node = node("api", "api", "foapi-", "--set", "api.shards=[%s]" % ", ".join(urls),
                        "--set", "api.ingest_nodes=[https://127.0.0.1:%d]" % ingest.api_port)
        api_node.start(timeout=120)
        # one deployment CA and the same API keys on every node (docs/scaling.md 6)
        for s in shards + [single, ingest]:
            os.makedirs(s.dir, mode=0o700, exist_ok=True)
            for f in ("ca.pem", "ca.key", "admin.key"):
                shutil.copy(os.path.join(api_node.dir, f), os.path.join(s.dir, f))
        ingest.start(timeout=120)
        for s in shards + [single, detect]:
            s.start(timeout=120)
        r = sim(ingest.dir, "--agents", AGENTS, "--events-per-agent", EVENTS, "--agent-prefix", "fo", "--timeout", 300)
        assert r["_rc"] == 0 and r["acked"] == AGENTS * EVENTS, r
        apis = {"api": Api(api_node.dir, api_node.api_port), "single": Api(single.dir, single.api_port),
                "shards": [Api(s.dir, s.api_port) for s in shards]}
        total = AGENTS * EVENTS
        deadline = time.time() + 120
        while time.time() < deadline:
            n = [a.search("any where true | count", **{"from": FROM, "to": TO})[1].get("count", 0)
                 for a in apis["shards"] + [apis["single"]]]
            if n[0] + n[1] == total and n[2] == total and n[0] and n[1]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the stores did not catch up: %r of %d" % (n, total))
        apis["ingest"] = Api(ingest.dir, ingest.api_port)
        yield apis, shards, api_node, base, ingest
    finally:
        try:
            stop_all(procs)
        finally:
            broker.stop()
            if not os.environ.get("MAMORI_KEEP_TEST_DIRS"):
                shutil.rmtree(base, ignore_errors=True)


def ids(rows):
    return [r["mamori"]["event_id"] for r in rows]


def seq_ids(rows):
    return [(s["by"], ids(s["events"])) for s in rows]


def pages(api, query, limit, key="events"):
    out, cursor, sizes = [], None, []
    while True:
        body = {"query": query, "limit": limit, "from": FROM, "to": TO}
        if cursor:
            body["cursor"] = cursor
        st, r = api.call("POST", "/v1/search", body)
        assert st == 200, (query, r)
        out += r[key]
        sizes.append(len(r[key]))
        cursor = r.get("cursor")
        if not cursor:
            return out, sizes
        assert len(sizes) < 2000


def same_pages(a, b):
    """the same rows page by page (the last page may differ only by an empty page with a cursor)"""
    while a and a[-1] == 0:
        a = a[:-1]
    while b and b[-1] == 0:
        b = b[:-1]
    return a == b


QUERIES = [
    'any where event.category : "process"',
    'any where host.name == "fo-00003" and event.category : "network"',
    'process where process.name : "cmd.exe"',
    'any where process.command_line : "*a*"',
    'any where event.category : "file" | head 230',
]


@pytest.mark.parametrize("q", QUERIES)
def test_events_same_rows_and_pages(cluster, q):
    apis = cluster[0]
    for limit in (97, 1000):
        got, gp = pages(apis["api"], q, limit)
        want, wp = pages(apis["single"], q, limit)
        assert ids(got) == ids(want), (q, limit, len(got), len(want))
        assert got == want
        assert same_pages(gp, wp), (gp, wp)
    assert len(want) > 0


def test_tail_count_and_count_by(cluster):
    apis = cluster[0]
    q = 'any where event.category : "process"'
    for tail in (5, 150):
        got, gp = pages(apis["api"], q + " | tail %d" % tail, 40)
        want, wp = pages(apis["single"], q + " | tail %d" % tail, 40)
        assert ids(got) == ids(want) and len(got) == tail and same_pages(gp, wp)
    for cq in ("any where true | count", q + " | count", q + " | head 10 | count",
               'sequence by host.id with maxspan=1s [process where event.type : "start"] [network where true] | count'):
        st, a = apis["api"].search(cq, **{"from": FROM, "to": TO})
        st2, b = apis["single"].search(cq, **{"from": FROM, "to": TO})
        assert st == st2 == 200 and a == b, (cq, a, b)
    for cq in ("any where true | count by host.name", "any where true | count by event.category, event.type",
               "any where true | count by process.name"):
        for limit in (7, 10000):
            got, gp = pages(apis["api"], cq, limit, "counts")
            want, wp = pages(apis["single"], cq, limit, "counts")
            assert got == want and gp == wp, cq
        assert len(got) > 1


def test_sequences(cluster):
    apis = cluster[0]
    q = 'sequence by host.id with maxspan=1s [process where event.type : "start"] [network where true]'
    for suffix, limit in (("", 50), (" | head 120", 50), ("", 10000)):
        got, gp = pages(apis["api"], q + suffix, limit, "sequences")
        want, wp = pages(apis["single"], q + suffix, limit, "sequences")
        assert seq_ids(got) == seq_ids(want) and same_pages(gp, wp), suffix
        assert got
    # the shards hold each host whole: the fan-out's sequences are the shards' ones
    per = sum(len(pages(a, q, 10000, "sequences")[0]) for a in apis["shards"])
    assert per == len(got)
    # per-stage host joins are host-bound too
    q2 = 'sequence with maxspan=1s [process where event.type : "start"] by host.id [network where true] by host.id'
    assert seq_ids(pages(apis["api"], q2, 10000, "sequences")[0]) == seq_ids(pages(apis["single"], q2, 10000,
                                                                                     "sequences")[0])
    # a sequence joined by something else spans shards: refused, never a partial answer
    for bad in ('sequence by user.name with maxspan=1s [process where true] [network where true]',
                'sequence with maxspan=1s [process where true] by host.id [network where true] by user.name'):
        body = {"query": bad, "from": FROM, "to": TO}
        st, r = apis["api"].call("POST", "/v1/search", body)
        assert st == 400 and "joined by the host" in r["error"]["message"], r
        st, r = apis["single"].call("POST", "/v1/search", body)
        assert st == 200, r


CORR = RULE.replace("title: cmd.exe started\n", "title: cmd.exe started\nname: cmd_started\n") + """---
title: cmd.exe twice on a host
id: 7c2e4b1a-0f3d-4e5a-9b8c-1d2e3f4a5b6c
status: test
correlation:
  type: event_count
  rules: [cmd_started]
  group-by: [host.name]
  timespan: 1h
  condition: {gte: 2}
level: high
"""


def test_rules_test_fans_out(cluster):
    """POST /v1/rules/test behind api.shards: the shards' retro-hunts merged equal the single
    node's (matches in order, correlation alerts, totals); a correlation not grouped by the
    host is refused (it would span shards); a bad rule is answered with its problems."""
    apis = cluster[0]
    for rule, limit in ((RULE, 10000), (RULE, 7), (CORR, 10000), (CORR, 5)):
        body = {"rule": rule, "from": FROM, "to": TO, "limit": limit}
        st, got = apis["api"].call("POST", "/v1/rules/test", body)
        assert st == 200, got
        st, want = apis["single"].call("POST", "/v1/rules/test", body)
        assert st == 200, want
        assert got["complete"] and got["shards"] == 2
        for k in ("events_scanned", "matches_total", "correlation_alerts_total", "rules"):
            assert got[k] == want[k], k
        assert [m["event"]["id"] for m in got["matches"]] == [m["event"]["id"] for m in want["matches"]]
        assert [c["correlation"]["id"] for c in got["correlation_alerts"]] == \
            [c["correlation"]["id"] for c in want["correlation_alerts"]]
        if rule is RULE:
            assert got["matches_total"] > 0 and len(got["matches"]) == min(limit, got["matches_total"])
        else:  # the base rule of a correlation does not alert alone
            n = got["correlation_alerts_total"]
            assert n > 0 and len(got["correlation_alerts"]) == min(limit, n)
    per_user = CORR.replace("group-by: [host.name]", "group-by: [user.name]")
    st, r = apis["api"].call("POST", "/v1/rules/test", {"rule": per_user, "from": FROM, "to": TO})
    assert st == 400 and r["error"]["code"] == "bad_rule" and "not grouped by the host" in r["error"]["message"], r
    st, r = apis["api"].call("POST", "/v1/rules/test", {"rule": "title: x\ndetection: {}\n", "from": FROM, "to": TO})
    assert st == 400 and r["error"]["code"] == "bad_rule" and r["error"]["problems"], r


def test_agents_fan_out(cluster):
    """GET /v1/agents behind api.shards + api.ingest_nodes lists every agent once, ordered by
    agent hash: the shard's row (its batches) with the ingest node's registry fields filled in;
    GET /v1/agents/{id} is the ingest node's live record."""
    apis = cluster[0]
    st, r = apis["api"].call("GET", "/v1/agents")
    assert st == 200, r
    got = [a for a in r["agents"] if a["id"] and a["id"].startswith("fo-")]
    assert sorted(a["id"] for a in got) == ["fo-%05d" % i for i in range(AGENTS)]
    assert [a["agent_hash"] for a in r["agents"]] == sorted(a["agent_hash"] for a in r["agents"])
    per = {}
    for a in apis["shards"]:
        for row in a.call("GET", "/v1/agents")[1]["agents"]:
            per[row["id"]] = row
    for a in got:
        assert a["last_acked_seq"] == per[a["id"]]["last_acked_seq"], a
        assert a["first_seen"] and per[a["id"]]["first_seen"] is None, (a, per[a["id"]])  # from the ingest node
    st, one = apis["api"].call("GET", "/v1/agents/fo-00003")
    assert st == 200 and one["id"] == "fo-00003" and one["first_seen"], one
    st, r = apis["api"].call("GET", "/v1/agents/nobody-here")
    assert st == 404, r
    st, r = apis["api"].call("GET", "/v1/agents/bad%20id")
    assert st == 400, r


def test_response_through_the_api_node(cluster):
    """Split roles: an action posted to the API node is created on the ingest node the agent
    is connected to, delivered, and read back through the API node; unknown agents are 404,
    bad input is the ingest node's 400."""
    apis, ingest = cluster[0], cluster[4]
    ag = RespAgent({"dir": ingest.dir, "port": ingest.port}, "resp-split")
    ag.hello_caps()
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            st, a = apis["api"].call("GET", "/v1/agents/resp-split")
            if st == 200 and a.get("online"):
                break
            time.sleep(0.2)
        assert st == 200 and a["online"] is True and a["id"] == "resp-split", a
        st, act = apis["api"].call("POST", "/v1/agents/resp-split/actions", {"action": "list_processes"})
        assert st == 201, act
        c = ag.next_command(timeout=30)
        assert c and c[1]["id"] == act["id"] and c[1]["action"] == "list_processes", c
        ag.result(c[0], act["id"], "succeeded", output={"processes": []})
        deadline = time.time() + 30
        while time.time() < deadline:
            st, got = apis["api"].call("GET", "/v1/actions/" + act["id"])
            if st == 200 and got["status"] == "succeeded":
                break
            time.sleep(0.2)
        assert st == 200 and got["status"] == "succeeded", got
        st, lst = apis["api"].call("GET", "/v1/agents/resp-split/actions?limit=5")
        assert st == 200 and [x["id"] for x in lst["actions"]] == [act["id"]], lst
        # the same action straight from the ingest node: one record, not two
        assert apis["ingest"].call("GET", "/v1/actions/" + act["id"])[1]["status"] == "succeeded"
        # a fetched file is read through the API node from the ingest node holding it
        data = os.urandom(150_000)
        sha = hashlib.sha256(data).hexdigest()
        st, f = apis["api"].call("POST", "/v1/agents/resp-split/actions",
                                 {"action": "fetch_file", "args": {"path": "/sandbox/s.bin"}})
        assert st == 201, f
        seq, _ = ag.next_command(timeout=30)
        ag.chunk(seq, data, last=True)
        ag.result(seq, f["id"], "succeeded", {"path": "/sandbox/s.bin", "size": len(data), "sha256": sha})
        assert wait_status(apis["api"], f["id"], "succeeded", timeout=30)["output"]["sha256"] == sha
        assert api_bytes(apis["api"], "/v1/files/" + sha) == (200, data)
        assert api_bytes(apis["api"], "/v1/files/" + "0" * 64)[0] == 404
        # the audit log behind the API node: its own (a key made there) and the ingest node's
        # (the actions), merged newest first; pages of one give the one-page answer
        st, k = apis["api"].call("POST", "/v1/keys", {"role": "viewer", "name": "audit-probe"})
        assert st == 201, k
        st, one = apis["api"].call("GET", "/v1/audit?limit=1000")
        assert st == 200 and "cursor" not in one, one
        whats = [(e["what"], e.get("target")) for e in one["entries"]]
        assert ("action.create", "resp-split") in whats and any(w == "key.create" for w, _ in whats), whats
        ats = [e["at"] for e in one["entries"]]
        assert ats == sorted(ats, reverse=True)
        paged, cursor = [], None
        for _ in range(200):
            st, page = apis["api"].call("GET", "/v1/audit?limit=1" + ("&cursor=" + cursor if cursor else ""))
            assert st == 200 and len(page["entries"]) <= 1, page
            paged += page["entries"]
            cursor = page.get("cursor")
            if not cursor:
                break
        assert paged == one["entries"]
        st, only = apis["api"].call("GET", "/v1/audit?agent=resp-split&action=fetch_file")
        assert st == 200 and only["entries"] and all(e["target"] == "resp-split" for e in only["entries"]), only
        assert apis["api"].call("GET", "/v1/audit?cursor=bogus")[0] == 400
        assert apis["api"].call("GET", "/v1/audit?nope=1")[0] == 400
        st, r = apis["api"].call("POST", "/v1/agents/nobody-here/actions", {"action": "isolate"})
        assert st == 404, r
        st, r = apis["api"].call("POST", "/v1/agents/resp-split/actions", {"action": "format_disk"})
        assert st == 400 and "action" in r["error"]["message"], r
        st, r = apis["api"].call("GET", "/v1/actions/" + "0" * 32)
        assert st == 404, r
        st, r = apis["api"].call("GET", "/v1/actions/xyz")
        assert st == 400, r
    finally:
        ag.close()


def test_event_by_id_and_alerts(cluster):
    apis = cluster[0]
    st, r = apis["single"].search('any where true | tail 3', **{"from": FROM, "to": TO})
    for e in r["events"]:
        eid = e["mamori"]["event_id"]
        st, got = apis["api"].call("GET", "/v1/events/" + eid)
        assert st == 200 and got == e
    # a process tree: one host's, answered by its shard, the same as the single node's
    st, r = apis["single"].search('process where event.type : "start" and process.parent.entity_id != null | tail 1',
                                  **{"from": FROM, "to": TO})
    ent = r["events"][0]["process"]["entity_id"]
    path = "/v1/process-tree?entity_id=%s&depth=3&from=%s&to=%s" % (urllib.parse.quote(ent), FROM, TO)
    st, t = apis["api"].call("GET", path)
    st2, t2 = apis["single"].call("GET", path)
    assert st == st2 == 200 and t == t2, (t, t2)
    st, t = apis["api"].call("GET", "/v1/process-tree?entity_id=nope&from=%s&to=%s" % (FROM, TO))
    assert st == 404, t
    st, nf = apis["api"].call("GET", "/v1/events/" + "0" * 56)
    assert st == 404 and nf["error"]["code"] == "not_found"
    st, bad = apis["api"].call("GET", "/v1/events/xyz")
    assert st == 400
    # alerts: the shards' alerts merged newest first (time descending, id), paged
    def shard_alerts(a):
        rows, cursor = [], None
        while True:
            st, r = a.call("GET", "/v1/alerts?limit=1000" + ("&cursor=" + cursor if cursor else ""))
            assert st == 200, r
            rows += r["alerts"]
            cursor = r.get("cursor")
            if not cursor:
                return rows
    deadline = time.time() + 60
    expected = []
    while time.time() < deadline:
        expected = sum((shard_alerts(a) for a in apis["shards"]), [])
        if expected and all(shard_alerts(a) for a in apis["shards"]):
            break
        time.sleep(1)
    assert expected, "no alerts reached the shards"
    expected.sort(key=lambda a: a["id"])
    expected.sort(key=lambda a: a["time"], reverse=True)
    got, cursor = [], None
    while True:
        st, r = apis["api"].call("GET", "/v1/alerts?limit=7" + ("&cursor=" + cursor if cursor else ""))
        assert st == 200, r
        got += r["alerts"]
        cursor = r.get("cursor")
        if not cursor:
            break
    assert [a["id"] for a in got] == [a["id"] for a in expected]
    st, hi = apis["api"].call("GET", "/v1/alerts?level=high&limit=1000")
    assert st == 200 and len(hi["alerts"]) == len(expected)
    st, bad = apis["api"].call("GET", "/v1/alerts?level=nope")
    assert st == 400, bad
    # one alert by id, and a change of it, on the shard that holds it
    one = expected[len(expected) // 2]
    st, g = apis["api"].call("GET", "/v1/alerts/" + one["id"])
    assert st == 200 and g == one
    st, p = apis["api"].call("PATCH", "/v1/alerts/" + one["id"], {"status": "acknowledged", "assignee": "alice"})
    assert st == 200 and p["status"] == "acknowledged" and p["assignee"] == "alice", p
    st, g = apis["api"].call("GET", "/v1/alerts/" + one["id"])
    assert st == 200 and g["status"] == "acknowledged"
    st, p = apis["api"].call("PATCH", "/v1/alerts/" + one["id"], {"status": "bogus"})
    assert st == 400 and p["error"]["code"] == "bad_request", p
    st, nf = apis["api"].call("GET", "/v1/alerts/" + "0" * 32)
    assert st == 404
    st, nf = apis["api"].call("PATCH", "/v1/alerts/" + "0" * 32, {"status": "closed"})
    assert st == 404
    st, bad = apis["api"].call("GET", "/v1/alerts/nothex")
    assert st == 400


def test_bad_cursor_shard_down_and_bad_config(cluster):
    apis, shards, api_node, base = cluster[:4]
    q = 'any where event.category : "process"'
    st, r = apis["api"].search(q, limit=10, cursor="c2deadbeef", **{"from": FROM, "to": TO})
    assert st == 400 and "cursor" in r["error"]["message"], r
    st, first = apis["api"].search(q, limit=10, **{"from": FROM, "to": TO})
    st, r = apis["api"].search(q + " and true", limit=10, cursor=first["cursor"], **{"from": FROM, "to": TO})
    assert st == 400 and r["error"]["code"] == "bad_request"
    st, r = apis["api"].search("any where (", **{"from": FROM, "to": TO})
    assert st == 400 and r["error"]["code"] == "bad_query" and "position" in r["error"]
    # a key the shards do not know (made on the API node only): 502 naming the shard, not a 401
    st, k = apis["api"].call("POST", "/v1/keys", {"role": "viewer", "name": "api-only"})
    assert st == 201, k
    st, r = apis["api"].search(q, key=k["key"], **{"from": FROM, "to": TO})
    assert st == 502 and r["error"]["code"] == "shard_refused" and "store shard 0" in r["error"]["message"], r
    # a bad api.shards item is refused, naming it
    p = subprocess.run([MAMORID, "--dev", os.path.join(base, "bad"), "--ingest-port", "0", "--api-port",
                        str(free_port()), "--set", "api.shards=[https://127.0.0.1:1, http://x:80]"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode != 0 and "'api.shards' item 1 'http://x:80'" in p.stderr + p.stdout, p.stderr
    p = subprocess.run([MAMORID, "--dev", os.path.join(base, "bad"), "--ingest-port", "0", "--api-port",
                        str(free_port()), "--set", "api.ingest_nodes=[https://127.0.0.1:1, https://127.0.0.1:1]"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode != 0 and "'api.ingest_nodes': 'https://127.0.0.1:1' listed twice" in p.stderr + p.stdout, \
        p.stderr
    # a shard down: 502 naming it, never a partial answer; the other endpoints too
    shards[1].stop()
    try:
        url = "https://127.0.0.1:%d" % shards[1].api_port
        st, r = apis["api"].search(q, **{"from": FROM, "to": TO})
        assert st == 502 and r["error"]["code"] == "shard_unavailable" and url in r["error"]["message"], r
        st, r = apis["api"].search(q + " | count", **{"from": FROM, "to": TO})
        assert st == 502 and url in r["error"]["message"]
        st, r = apis["api"].call("GET", "/v1/alerts")
        assert st == 502 and url in r["error"]["message"]
        st, r = apis["api"].call("GET", "/v1/healthz")
    finally:
        shards[1].start(timeout=120)
    st, r = apis["api"].search(q + " | count", **{"from": FROM, "to": TO})
    assert st == 200 and r["count"] > 0


@pytest.mark.skipif(not os.environ.get("MAMORI_FANOUT_BENCH"), reason="figures only: MAMORI_FANOUT_BENCH=1")
def test_latency_figures(cluster):
    """Fan-out against the single node, same data: median and p90 wall time of 50 runs each
    (docs/scaling.md 6)."""
    apis = cluster[0]
    queries = {
        "needle": 'any where host.name == "fo-00003" and process.name : "cmd.exe"',
        "page of 100": 'any where event.category : "process"',
        "count": 'any where event.category : "process" | count',
        "count by host.name": "any where true | count by host.name",
        "sequence page": 'sequence by host.id with maxspan=1s [process where event.type : "start"] [network where true]',
    }
    for name, q in queries.items():
        line = []
        for who in ("single", "api"):
            times = []
            for _ in range(50):
                t = time.perf_counter()
                st, _ = apis[who].search(q, limit=100, **{"from": FROM, "to": TO})
                times.append((time.perf_counter() - t) * 1000)
                assert st == 200
            times.sort()
            line.append("%s p50 %.1f ms p90 %.1f ms" % (who, times[25], times[45]))
        print("\n%-20s %s" % (name, " | ".join(line)))

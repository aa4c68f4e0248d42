"""Bad input is refused or rejected with a clear reason, alone: a well-behaved agent
streaming at the same time loses nothing, and the server keeps running."""
import json
import os
import shutil
import socket
import ssl
import time

import pytest

from harness import (ACK, CLOSE, EVENTS, FLAG_ZSTD, PING, PONG, Agent, Server, ctl, frame, make_agent_cert, make_ca,
                     parse_sim, sim, temp_dir, zstd_compress)


@pytest.fixture(scope="module")
def node():
    d = temp_dir("mamori-bad-")
    server = Server(d).start()
    certs = os.path.join(d, "certs")
    os.makedirs(certs)
    good = make_agent_cert(os.path.join(d, "ca.pem"), os.path.join(d, "ca.key"), "raw-agent", "default", certs)
    other_ca = make_ca(certs)
    foreign = make_agent_cert(other_ca[0], other_ca[1], "intruder", "default", certs)
    # the well-behaved agents: rate-limited so they stream through every bad-input test
    background = sim(d, "--agents", 20, "--events-per-agent", 20000, "--rate", 40000, "--agent-prefix", "good",
                     background=True)
    yield {"dir": d, "server": server, "good": good, "foreign": foreign, "background": background}
    out, err = background.communicate(timeout=600)
    s = parse_sim(background.returncode, out, err)
    server_alive = server.alive()
    server.stop()
    assert server_alive, "the server must survive every bad input"
    assert s["_rc"] == 0 and s["sent"] == 400_000 and s["acked"] == 400_000 and s["rejected"] == 0, err[-2000:]
    counts = ctl("store", "lookup", "--dev", d, "--tenant", "default", "--field", "host.name",
                 *sum([["--value", "good-%05d" % i] for i in range(20)], []))
    assert counts["events"] == 400_000, "a well-behaved agent lost events while others misbehaved"
    shutil.rmtree(d, ignore_errors=True)


def ca(node):
    return os.path.join(node["dir"], "ca.pem")


def test_garbage_instead_of_tls_is_refused(node):
    s = socket.create_connection(("127.0.0.1", node["server"].port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(2000))
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    # at most a TLS alert record (content type 21), never a frame
    assert data == b"" or data[0] == 21
    assert node["server"].alive()


def test_client_without_certificate_gets_no_session(node):
    a = Agent(node["server"].port, ca(node))  # no client certificate
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, AssertionError)):
        a.send(frame(1, b'{"protocol":1}'))
        assert a.recv_frame(timeout=5) is not None
        raise AssertionError("unexpected frame")
    a.close()


def test_certificate_from_another_ca_gets_no_session(node):
    a = Agent(node["server"].port, ca(node), *node["foreign"])
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, AssertionError)):
        a.send(frame(1, b'{"protocol":1}'))
        assert a.recv_frame(timeout=5) is not None
        raise AssertionError("unexpected frame")
    a.close()
    assert "TLS handshake failed" in node["server"].log()


def connected(node):
    a = Agent(node["server"].port, ca(node), *node["good"])
    welcome = a.hello()
    return a, welcome


def expect_close(a, needle):
    while True:
        f = a.recv_frame()
        assert f is not None, "connection ended without a CLOSE frame"
        if f[0] == CLOSE:
            reason = f[3].decode()
            assert needle in reason, reason
            return reason


def test_oversize_frame_length_is_a_violation(node):
    a, _ = connected(node)
    a.send(frame(EVENTS, seq=1, length=9 * 1024 * 1024))  # header only: the length alone is refused
    reason = expect_close(a, "over max")
    assert "length 9437184 over max 4194304" in reason
    a.close()


def test_unknown_frame_type_is_a_violation(node):
    a, _ = connected(node)
    a.send(frame(42, b"x"))
    expect_close(a, "unknown frame type 42")
    a.close()


def test_first_frame_must_be_hello(node):
    a = Agent(node["server"].port, ca(node), *node["good"])
    a.send(frame(EVENTS, b"{}\n", seq=1))
    expect_close(a, "expected HELLO, got EVENTS")
    a.close()


def test_invalid_json_inside_a_batch_is_rejected_alone(node):
    a, welcome = connected(node)
    seq = welcome["resume_seq"] + 1
    lines = [json.dumps({"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["process"]},
                         "process": {"name": "ok%d.exe" % i}}) for i in range(5)]
    lines.insert(2, '{"process": {"name": "broken.exe"')  # line 3: truncated JSON
    lines.insert(4, '["not", "an", "object"]')             # line 5
    a.send(frame(EVENTS, ("\n".join(lines) + "\n").encode(), seq=seq))
    f = a.recv_frame()
    while f and f[0] == PING:
        f = a.recv_frame()
    assert f and f[0] == ACK and f[2] == seq
    ack = json.loads(f[3])
    assert ack["accepted"] == 5 and ack["rejected"] == 2
    assert [e["line"] for e in ack["errors"]] == [3, 5]
    assert "invalid JSON" in ack["errors"][0]["reason"]
    assert "not an object" in ack["errors"][1]["reason"]
    # the connection goes on working
    a.send(frame(PING, seq=77))
    f = a.recv_frame()
    assert f[0] == PONG and f[2] == 77
    a.close()


@pytest.mark.parametrize("content_size", [True, False])
def test_zstd_bomb_is_refused(node, content_size):
    a, welcome = connected(node)
    bomb = zstd_compress(b"\n" * (200 * 1024 * 1024), content_size=content_size)
    assert len(bomb) < 1024 * 1024
    a.send(frame(EVENTS, bomb, seq=welcome["resume_seq"] + 1, flags=FLAG_ZSTD))
    expect_close(a, "zstd: decompressed size")
    a.close()


def test_sequence_below_resume_point_is_refused(node):
    a, welcome = connected(node)
    if welcome["resume_seq"] == 0:
        a.send(frame(EVENTS, b"", seq=1))
        f = a.recv_frame()
        assert f[0] == ACK
        a.close()
        a, welcome = connected(node)
    a.send(frame(EVENTS, b"", seq=welcome["resume_seq"]))
    expect_close(a, "at or below resume point")
    a.close()

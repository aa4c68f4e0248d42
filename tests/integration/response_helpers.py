"""Helpers for the response-action tests (docs/response.md): a sandbox tree for the
simulator, the HTTPS API, a throwaway ingest peer that sends COMMANDs itself (to test the
simulator's side of the protocol without the server), a TCP service to probe, and a
network namespace joined to the host by a veth pair for real isolation with nftables.
Everything started here is stopped, and every namespace and link removed, by whoever
made it (context managers), also when a test fails."""
import hashlib
import json
import os
import queue
import random
import select
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

from harness import COMMAND, HELLO, PING, PONG, RESULT, SIM, WELCOME, CLOSE, frame

FLAG_CHUNK, FLAG_LAST = 0x08, 0x10


def make_sandbox(root):
    """A small tree: files with known content, a nested directory, a link that stays
    inside and links that point outside. Returns {relative path: bytes} of the files."""
    files = {
        "docs/report.txt": b"quarterly numbers\n" * 100,
        "docs/deep/a/b/note.txt": b"deep note\n",
        "tmp/dropper.exe": os.urandom(3000),
        "tmp/empty.bin": b"",
        "big/blob.bin": os.urandom(3 * 1024 * 1024 + 12345),  # four chunks
        "victim.txt": b"delete me\n",
    }
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    os.symlink("docs/report.txt", os.path.join(root, "inside-link"))
    os.symlink("/etc/passwd", os.path.join(root, "outside-abs"))
    os.symlink("../../../../../../../../etc/hostname", os.path.join(root, "outside-rel"))
    os.symlink("/etc", os.path.join(root, "docs/etc-dir"))
    return files


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sim_cmd(dev_dir, *args):
    return [SIM, "--dev", dev_dir] + [str(a) for a in args]


class SimProcess:
    """A simulator in the background; stop() sends SIGTERM and returns its summary."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.summary = None

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        if self.summary is not None:
            return self.summary
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        lines = [l for l in out.splitlines() if l.strip()]
        self.summary = json.loads(lines[-1]) if lines else {}
        self.summary["_rc"] = self.proc.returncode
        self.summary["_stderr"] = err
        # a sanitizer build of the simulator reports memory errors and leaks here
        assert "Sanitizer" not in err, err[-4000:]
        return self.summary

    def kill9(self):
        self.proc.kill()
        self.proc.communicate()
        self.summary = {"_rc": self.proc.returncode}


# ---- the HTTPS API ----

class Api:
    def __init__(self, dev_dir, port, host="127.0.0.1"):
        self.base = "https://%s:%d" % (host, port)
        self.ctx = ssl.create_default_context(cafile=os.path.join(dev_dir, "ca.pem"))
        with open(os.path.join(dev_dir, "admin.key")) as f:
            self.admin = f.read().strip()

    def call(self, method, path, body=None, key=None, raw=False, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + (key or self.admin))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                text = r.read()
                if raw:
                    return r.status, text
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text.decode(errors="replace")

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.call("GET", "/healthz", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("API not healthy within %ss" % timeout)

    def act(self, agent, action, args=None, expires_in=None, key=None):
        body = {"action": action, "args": args if args is not None else {}}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self.call("POST", "/v1/agents/%s/actions" % agent, body, key=key)

    def wait_action(self, action_id, timeout=30, final=("succeeded", "failed", "expired"), key=None):
        deadline = time.time() + timeout
        rec = None
        while time.time() < deadline:
            st, rec = self.call("GET", "/v1/actions/" + action_id, key=key)
            assert st == 200, rec
            if rec["status"] in final:
                return rec
            time.sleep(0.05)
        raise AssertionError("action %s not %s within %ss: %r" % (action_id, "/".join(final), timeout, rec))

    def run(self, agent, action, args=None, timeout=30, **kw):
        st, rec = self.act(agent, action, args, **kw)
        assert st == 201, (st, rec)
        return self.wait_action(rec["id"], timeout)

    def agent(self, agent_id):
        st, rec = self.call("GET", "/v1/agents/" + agent_id)
        assert st == 200, rec
        return rec

    def wait_agent(self, agent_id, pred, timeout=30, what="condition"):
        deadline = time.time() + timeout
        rec = None
        while time.time() < deadline:
            st, rec = self.call("GET", "/v1/agents/" + agent_id)
            if st == 200 and pred(rec):
                return rec
            time.sleep(0.05)
        raise AssertionError("agent %s: %s not reached within %ss: %r" % (agent_id, what, timeout, rec))


def response_missing(api):
    """Why the server cannot be tested for response actions, or None."""
    st, r = api.call("GET", "/v1/actions/" + "0" * 32)
    if st == 404 and "no such endpoint" in json.dumps(r):
        return "the server has no response-action API yet (GET /v1/actions/{id}: %s)" % r["error"]["message"]
    return None


# ---- a throwaway ingest peer that sends COMMANDs ----

class FakeConn:
    """One agent connection accepted by FakeIngest. A reader thread answers PINGs and
    files every other frame by kind."""

    def __init__(self, sock, isolation="none", heartbeat_ms=30000, max_frame_bytes=4 * 1024 * 1024):
        self.sock = sock
        self.buf = b""
        self.frames = queue.Queue()
        self.pings = []  # heartbeat payloads, in order
        self.closed = threading.Event()
        f = self._read_frame(10)
        assert f and f[0] == HELLO, "expected HELLO, got %r" % (f,)
        self.hello = json.loads(f[3])
        welcome = {"protocol": 1, "agent_id": "x", "tenant": "default", "resume_seq": 0, "acked_seq": 0,
                   "isolation": isolation, "heartbeat_interval_ms": heartbeat_ms,
                   "server_time": "2026-01-01T00:00:00.000000Z",
                   "limits": {"max_frame_bytes": max_frame_bytes, "max_batch_bytes": 16777216,
                              "max_batch_events": 10000, "max_unacked_batches": 16, "max_events_per_second": 20000}}
        self.sock.sendall(frame(WELCOME, json.dumps(welcome).encode()))
        # One TLS object must never be read and written by two threads at once: every
        # operation takes the lock, and the reader polls without blocking inside it.
        self.lock = threading.Lock()
        self.sock.settimeout(0.0)
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _read_frame(self, timeout):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 16:
                n, t, fl, _, seq = struct.unpack(">IBBHQ", self.buf[:16])
                if len(self.buf) >= 16 + n:
                    payload = self.buf[16:16 + n]
                    self.buf = self.buf[16 + n:]
                    return t, fl, seq, payload
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def _recv_locked(self):
        """Some bytes, b"" at EOF, None on error; waits outside the lock."""
        while True:
            with self.lock:
                try:
                    return self.sock.recv(1 << 20)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
                except (ssl.SSLError, OSError):
                    return None
            try:
                select.select([self.sock], [], [], 0.05)
            except (OSError, ValueError):
                return None

    def _next_frame(self):
        while True:
            if len(self.buf) >= 16:
                n, t, fl, _, seq = struct.unpack(">IBBHQ", self.buf[:16])
                if len(self.buf) >= 16 + n:
                    payload = self.buf[16:16 + n]
                    self.buf = self.buf[16 + n:]
                    return t, fl, seq, payload
            chunk = self._recv_locked()
            if not chunk:
                return None
            self.buf += chunk

    def _send(self, data):
        with self.lock:
            self.sock.settimeout(10)
            try:
                self.sock.sendall(data)
            finally:
                self.sock.settimeout(0.0)

    def _reader(self):
        while True:
            f = self._next_frame()
            if f is None or f[0] == CLOSE:
                self.closed.set()
                self.frames.put(f)
                return
            if f[0] == PING:
                self.pings.append(json.loads(f[3]) if f[3] else {})
                try:
                    self._send(frame(PONG, seq=f[2]))
                except OSError:
                    pass
                continue
            self.frames.put(f)

    def command(self, seq, action, args=None, action_id=None, expires_at=None):
        action_id = action_id or "%032x" % random.getrandbits(128)
        body = {"id": action_id, "action": action, "args": args if args is not None else {}}
        if expires_at:
            body["expires_at"] = expires_at
        self._send(frame(COMMAND, json.dumps(body).encode(), seq=seq))
        return action_id

    def raw_command(self, seq, payload):
        self._send(frame(COMMAND, payload, seq=seq))

    def result(self, seq, timeout=20):
        """Every RESULT frame of command `seq` up to its final one: (statuses, final
        JSON, file bytes, chunk frames)."""
        statuses, data, chunks = [], b"", []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                f = self.frames.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            assert f is not None, "connection ended while waiting for the result of %d" % seq
            t, fl, s, payload = f
            assert t == RESULT, "unexpected frame %r" % (f,)
            assert s == seq, "RESULT for %d while waiting for %d" % (s, seq)
            if fl & FLAG_CHUNK:
                assert len(payload) <= 1024 * 1024
                chunks.append((fl, len(payload)))
                data += payload
                continue
            assert fl == 0
            r = json.loads(payload)
            statuses.append(r["status"])
            if r["status"] in ("succeeded", "failed"):
                return statuses, r, data, chunks
        raise AssertionError("no final RESULT for command %d within %ss (so far %r)" % (seq, timeout, statuses))

    def run(self, seq, action, args=None, **kw):
        self.command(seq, action, args, **kw)
        return self.result(seq)

    def close(self):
        # shutdown first: the reader thread blocked in recv would keep the socket open
        for f in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                f()
            except OSError:
                pass
        self.thread.join(5)


class FakeIngest:
    """Listens with the dev PKI's server certificate and asks for agent certificates."""

    def __init__(self, dev_dir, host="127.0.0.1", port=0):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(os.path.join(dev_dir, "server.pem"), os.path.join(dev_dir, "server.key"))
        self.ctx.load_verify_locations(os.path.join(dev_dir, "ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(16)
        self.host, self.port = self.listener.getsockname()
        self.conns = []

    def accept(self, timeout=20, **kw):
        """The next agent connection; connections that are no TLS agent (a reachability
        probe) are skipped."""
        deadline = time.time() + timeout
        while True:
            self.listener.settimeout(max(0.1, deadline - time.time()))
            raw, _ = self.listener.accept()
            raw.settimeout(10)
            try:
                tls = self.ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                if time.time() > deadline:
                    raise
                continue
            conn = FakeConn(tls, **kw)
            self.conns.append(conn)
            return conn

    def close(self):
        for c in self.conns:
            c.close()
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- a TCP service to probe reachability ----

class EchoService:
    """Accepts connections on (host, port) and answers each with one line."""

    def __init__(self, host, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.host, self.port = self.sock.getsockname()
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                c.sendall(b"mamori-test-service\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.stop_flag = True
        self.thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- a network namespace with a veth pair ----

PROBE = ("import socket,sys\n"
         "try:\n"
         "    s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=float(sys.argv[3]))\n"
         "    s.close(); print('ok')\n"
         "except Exception as e:\n"
         "    print('fail', type(e).__name__)\n")


class NetNS:
    """`ip netns add` + a veth pair: the host end gets HOST_IP/30, the namespace end
    NS_IP/30 (private addresses, reachable only between the two ends). Removed by
    close(), whatever state the test left it in."""

    def __init__(self):
        self.tag = "%06x" % random.getrandbits(24)
        self.name = "mamori-t" + self.tag
        self.host_if, self.ns_if = "mvh" + self.tag, "mvn" + self.tag
        # a /30 no other namespace of a test running beside this one uses
        taken = subprocess.run(["ip", "-o", "-4", "addr", "show"], stdout=subprocess.PIPE, text=True).stdout
        third = random.choice([n for n in range(256) if "10.231.%d." % n not in taken] or [0])
        self.host_ip, self.ns_ip = "10.231.%d.1" % third, "10.231.%d.2" % third
        self.made_ns = self.made_link = False
        try:
            self._ip("netns", "add", self.name)
            self.made_ns = True
            self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self.made_link = True
            self._ip("link", "set", self.ns_if, "netns", self.name)
            self._ip("addr", "add", self.host_ip + "/30", "dev", self.host_if)
            self._ip("link", "set", self.host_if, "up")
            self.exec("ip", "addr", "add", self.ns_ip + "/30", "dev", self.ns_if, check=True)
            self.exec("ip", "link", "set", self.ns_if, "up", check=True)
            self.exec("ip", "link", "set", "lo", "up", check=True)
        except Exception:
            self.close()
            raise
        # the link needs a moment before the first packet (DAD does not apply to IPv4)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.exec("ping", "-c", "1", "-W", "1", self.host_ip).returncode == 0:
                break
            time.sleep(0.1)

    @staticmethod
    def _ip(*args):
        p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode:
            raise OSError("ip %s: %s" % (" ".join(args), p.stderr.strip()))

    def exec(self, *args, check=False, timeout=30):
        p = subprocess.run(["ip", "netns", "exec", self.name] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and p.returncode:
            raise OSError("%s: %s" % (" ".join(args), p.stderr.strip()))
        return p

    def popen(self, cmd):
        return ["ip", "netns", "exec", self.name] + cmd

    def reach(self, host, port, timeout=1.5):
        """Can a TCP connection be opened from inside the namespace?"""
        p = self.exec("python3", "-c", PROBE, host, str(port), str(timeout))
        return p.stdout.strip() == "ok"

    def nft_tables(self):
        return self.exec("nft", "list", "tables").stdout

    def close(self):
        if self.made_link:
            subprocess.run(["ip", "link", "del", self.host_if], stderr=subprocess.DEVNULL)
        if self.made_ns:
            subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
        self.made_ns = self.made_link = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def netns_unavailable():
    """None if a namespace with a veth pair and nft can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "'%s' is not installed (scripts/setup.sh installs iproute2 and nftables)" % tool
    try:
        ns = NetNS()
    except Exception as e:  # noqa: BLE001 - any failure means: cannot test isolation here
        return "cannot create a network namespace with a veth pair: %s" % e
    try:
        p = ns.exec("nft", "list", "tables")
        if p.returncode:
            return "nft does not work in a network namespace: %s" % p.stderr.strip()
    finally:
        ns.close()
    return None

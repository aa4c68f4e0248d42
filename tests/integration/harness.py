"""Shared helpers for the integration tests: start the real mamorid on loopback, run the
real simulator, inspect the store with mamorictl, and speak raw protocol v1 frames over
TLS for bad-input tests. Every process started here is stopped by the fixture that made it."""
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

BUILD = os.environ.get("MAMORI_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build/release"))
DATA = os.environ.get("MAMORI_DATA_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
MAMORID = os.path.join(BUILD, "server/mamorid")
MAMORICTL = os.path.join(BUILD, "cli/mamorictl")
SIM = os.path.join(BUILD, "bench/mamori-agent-sim")

HELLO, WELCOME, EVENTS, ACK, COMMAND, RESULT, PING, PONG, CLOSE = range(1, 10)
FLAG_ZSTD = 0x01
FORMAT_ECS, FORMAT_WINLOG, FORMAT_AUTO = 0, 1, 2


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """mamorid --dev DIR on a fixed free port (so a restart keeps the address)."""

    def __init__(self, dev_dir, port=None, extra=(), prefix=()):
        self.dir = dev_dir
        self.prefix = list(prefix)  # e.g. setpriv: run mamorid as another user
        self.port = port or free_port()
        self.extra = list(extra)
        # every server gets its own API port too: tests run in parallel
        if "--api-port" in self.extra:
            self.api_port = int(self.extra[self.extra.index("--api-port") + 1])
        else:
            self.api_port = free_port()
            self.extra += ["--api-port", str(self.api_port)]
        self.proc = None
        self.log_path = os.path.join(dev_dir, "mamorid.log")

    def start(self, timeout=30):
        os.makedirs(self.dir, exist_ok=True)
        log = open(self.log_path, "a")
        # the log is appended across restarts: only this start's lines count
        offset = os.path.getsize(self.log_path)
        cmd = self.prefix + [MAMORID, "--dev", self.dir, "--ingest-port", str(self.port)] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mamorid exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if "ready ingest_port" in self.log()[offset:]:
                return self
            time.sleep(0.05)
        raise RuntimeError("mamorid did not become ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("mamorid did not stop on SIGTERM:\n" + self.log()[-4000:])
            if self.proc.returncode < 0:  # died of a signal while shutting down: a crash (its stack is logged)
                raise RuntimeError("mamorid died of signal %d on SIGTERM:\n%s" % (-self.proc.returncode,
                                                                                 self.log()[-6000:]))
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def stop_all(servers):
    """Stops every server still running — all of them, even when one dies of a signal at stop
    (Server.stop raises then) — and re-raises the first such error afterwards."""
    first = None
    for s in servers:
        if s is None or not s.alive():
            continue
        try:
            s.stop()
        except Exception as e:  # re-raised below, once the others are stopped
            first = first or e
    if first:
        raise first


def unprivileged(dev_dir):
    """A Server prefix running mamorid as nobody when the tests run as root (for tests of a
    file mamorid cannot read: root reads a mode-000 directory anyway); dev_dir opened to it."""
    if os.geteuid() != 0:
        return []
    os.chmod(dev_dir, 0o777)
    return ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def sim(dev_dir, *args, timeout=900, background=False):
    cmd = [SIM, "--dev", dev_dir] + [str(a) for a in args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    return parse_sim(p.returncode, p.stdout, p.stderr)


def parse_sim(rc, out, err):
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 1, "simulator must print exactly one JSON line, got %r\nstderr:\n%s" % (out, err[-3000:])
    summary = json.loads(lines[0])
    summary["_rc"] = rc
    summary["_stderr"] = err
    return summary


def ctl(*args):
    p = subprocess.run([MAMORICTL] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    assert p.returncode == 0, "mamorictl %s failed (%d): %s" % (" ".join(map(str, args)), p.returncode, p.stderr)
    return json.loads(p.stdout)


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_agent_cert(ca_cert, ca_key, agent_id, tenant, out_dir):
    """An agent certificate (CN=agent id, O=tenant) signed by the given CA, via the openssl CLI."""
    key = os.path.join(out_dir, agent_id + ".key")
    csr = os.path.join(out_dir, agent_id + ".csr")
    crt = os.path.join(out_dir, agent_id + ".pem")
    ext = os.path.join(out_dir, agent_id + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=%s/O=%s" % (agent_id, tenant))
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", crt)
    return crt, key


def make_ca(out_dir, name="Other CA"):
    key = os.path.join(out_dir, "other-ca.key")
    crt = os.path.join(out_dir, "other-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", crt, "-subj", "/CN=%s" % name, "-days", "2")
    return crt, key


def frame(ftype, payload=b"", seq=0, flags=0, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">IBBHQ", n, ftype, flags, 0, seq) + payload


class Agent:
    """A raw protocol v1 client over TLS 1.3, for tests that must send what no good agent sends."""

    def __init__(self, port, ca, cert=None, key=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self, timeout=10):
        """Returns (type, flags, seq, payload), or None when the server closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 16:
                n, t, fl, _, seq = struct.unpack(">IBBHQ", self.buf[:16])
                if len(self.buf) >= 16 + n:
                    payload = self.buf[16:16 + n]
                    self.buf = self.buf[16 + n:]
                    return t, fl, seq, payload
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLError, ConnectionError, OSError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def hello(self, last_acked=0):
        self.send(frame(HELLO, json.dumps({"protocol": 1, "agent_version": "test", "last_acked_seq": last_acked,
                                           "capabilities": ["zstd"]}).encode()))
        f = self.recv_frame()
        assert f and f[0] == WELCOME, "expected WELCOME, got %r" % (f,)
        return json.loads(f[3])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def zstd_compress(data, content_size=True):
    """One zstd frame; with content_size the frame header records the decompressed size
    (the CLI only knows it when reading a file, not a pipe)."""
    if not content_size:
        return subprocess.run(["zstd", "-q", "-c", "-1", "--no-content-size"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(["zstd", "-q", "-c", "-1", f.name], stdout=subprocess.PIPE, check=True).stdout


def temp_dir(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("MAMORI_TEST_TMP", "/tmp"))


KAFKA_DEV = os.path.join(os.environ.get("MAMORI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../..")),
                         "deploy/kafka-dev.sh")


class KafkaBroker:
    """A single-node Apache Kafka broker on loopback (deploy/kafka-dev.sh), data in d."""

    def __init__(self, d):
        self.dir = d
        self.bootstrap = None

    def start(self):
        p = subprocess.run([KAFKA_DEV, "start", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=900)  # the first start on a machine downloads the broker
        assert p.returncode == 0, p.stdout + p.stderr
        line = p.stdout.strip().splitlines()[-1]
        assert line.startswith("bootstrap="), p.stdout
        self.bootstrap = line.split("=", 1)[1]
        return self

    def stop(self):
        subprocess.run([KAFKA_DEV, "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, check=True)


def metrics(api_port, prefix="mamori_"):
    """The process's /metrics as {name{labels}: value} for names starting with prefix."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import urllib.request
    with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % api_port, context=ctx, timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values

"""Helpers for mcbox's integration tests: the lab's addresses, mcbox's telemetry counters, a
memcached UDP client, and a tiny runner that prints 'N passed, M failed'.

Tests run inside the client namespace (ip netns exec mcbox-client) with Debian's python3."""
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get("LAB_DIR", os.path.join(ROOT, "build", "lab"))
SERVER_IP = "198.18.0.1"
CLIENT_IP = "198.18.0.2"
SERVER_IP6 = "2001:2::1"
CLIENT_IP6 = "2001:2::2"
CLIENT_IF = "mcc0"
MC_PORT = 11211


def boxes():
    """The lab's boxes as (ip, port), box k at index k: build/lab/boxes, written by
    scripts/lab.sh once every box answers (LAB_BOXES=N gives N lines)."""
    out = []
    with open(os.path.join(LAB_DIR, "boxes")) as f:
        for line in f:
            line = line.strip()
            if line:
                host, port = line.rsplit(":", 1)
                out.append((host, int(port)))
    return out


def lab(cmd, timeout=120, **env):
    """Run scripts/lab.sh CMD ("stop" or "start") in the namespaces of the runner (run.sh),
    where the lab was made: from the client namespace the box's veth and its kernel interface
    are out of reach. env adds variables (MCBOX_ARGS, LAB_SIGNAL). Returns the script's
    output; raises if it fails."""
    host = os.environ.get("MCBOX_LAB_HOST_PID")
    if not host:
        raise RuntimeError("MCBOX_LAB_HOST_PID is not set: run the suite through "
                           "tests/integration/run.sh")
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run(["nsenter", "-t", host, "-n", "-m", "--", "bash",
                        os.path.join(ROOT, "scripts", "lab.sh"), cmd],
                       env=e, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("lab.sh %s failed (%d): %s" % (cmd, p.returncode, p.stdout))
    return p.stdout


def telemetry(cmd="/mcbox/stats"):
    """Ask mcbox's DPDK telemetry socket; returns the command's dict."""
    prefix = open(os.path.join(LAB_DIR, "prefix")).read().strip()
    path = "/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    s.recv(16384)  # the greeting
    s.send(cmd.encode())
    data = json.loads(s.recv(1 << 20).decode())
    s.close()
    return data[cmd]


def server_mac():
    with open("/sys/class/net/%s/address" % CLIENT_IF) as f:
        f.read()  # our own MAC; the server's comes from the neighbour table
    out = os.popen("ip neigh show %s dev %s" % (SERVER_IP, CLIENT_IF)).read().split()
    if "lladdr" in out:
        return out[out.index("lladdr") + 1]
    os.system("ping -c 1 -W 1 -q %s >/dev/null 2>&1" % SERVER_IP)
    out = os.popen("ip neigh show %s dev %s" % (SERVER_IP, CLIENT_IF)).read().split()
    return out[out.index("lladdr") + 1]


class Memcached:
    """Stock memcached -U on a loopback address inside the client namespace (the oracle):
    127.0.0.1, or ::1 for the differential over IPv6."""

    def __init__(self, memory_mb=64, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((host, 0))
        self.port = s.getsockname()[1]
        s.close()
        self.p = subprocess.Popen(["memcached", "-u", "root", "-l", host, "-p", "0",
                                   "-U", str(self.port), "-m", str(memory_mb), "-t", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        c = UdpClient(host, self.port, timeout=0.2)
        while time.time() < deadline:
            try:
                if c.request(b"version\r\n", idle=0.05).startswith(b"VERSION"):
                    break
            except OSError:
                pass
        c.close()

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def wait_counter(name, at_least, timeout=5.0):
    """Poll telemetry until counter name reaches at_least (bounded); returns its value."""
    deadline = time.time() + timeout
    v = telemetry()[name]
    while v < at_least and time.time() < deadline:
        time.sleep(0.02)
        v = telemetry()[name]
    return v


class UdpClient:
    """memcached over UDP: 8-byte frame header, replies reassembled per request id."""

    def __init__(self, host=SERVER_IP, port=MC_PORT, timeout=2.0, sport=0):
        self.addr = (host, port)
        self.s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                               socket.SOCK_DGRAM)
        self.s.bind(("", sport))
        self.s.settimeout(timeout)
        self.rid = random.randrange(1 << 16)

    def close(self):
        self.s.close()

    def send_raw(self, payload, rid=None, seq=0, total=1):
        if rid is None:
            self.rid = (self.rid + 1) & 0xFFFF
            rid = self.rid
        self.s.sendto(struct.pack("!HHHH", rid, seq, total, 0) + payload, self.addr)
        return rid

    def recv_reply(self, rid, quiet_ok=False, idle=0.3):
        """Collect datagrams of request rid. memcached 1.6 may send one message per response
        object (each seq 0 / total 1) or one sequenced message; the byte stream is the
        concatenation in arrival order per message, ordered by seq within a message.
        Stops after `total` datagrams of the last message and `idle` seconds of silence."""
        chunks = []
        got_any = False
        self.s.settimeout(idle if quiet_ok else self.s.gettimeout())
        first_timeout = self.s.gettimeout()
        while True:
            try:
                data, _ = self.s.recvfrom(65536)
            except socket.timeout:
                break
            if len(data) < 8:
                continue
            r, seq, total, _res = struct.unpack("!HHHH", data[:8])
            if r != rid:
                continue
            chunks.append((seq, total, data[8:]))
            got_any = True
            self.s.settimeout(idle)
        self.s.settimeout(first_timeout if not got_any else 2.0)
        self.s.settimeout(2.0)
        return assemble(chunks)

    def request(self, payload, idle=0.3):
        """One request, one reply datagram set. idle=0 returns after the first complete
        message (single-reply requests); otherwise waits idle seconds for more."""
        rid = self.send_raw(payload)
        if idle == 0.0:
            chunks = []
            while True:
                data, _ = self.s.recvfrom(65536)
                r, seq, total, _res = struct.unpack("!HHHH", data[:8])
                if r != rid:
                    continue
                chunks.append((seq, total, data[8:]))
                if len(chunks) >= total:
                    return assemble(chunks)
        return self.recv_reply(rid, idle=idle)


class SentinelClient(UdpClient):
    """Sends a request datagram, then an "mn" sentinel datagram: every reply datagram of the
    request arrives before the sentinel's MN (both servers answer datagrams in order)."""

    def exchange_raw(self, payload):
        """The request's reply datagrams, as (seq, total, payload) in arrival order."""
        rid = self.send_raw(payload)
        sid = self.send_raw(b"mn\r\n")
        chunks = []
        while True:
            data, _ = self.s.recvfrom(65536)
            r, seq, total, _res = struct.unpack("!HHHH", data[:8])
            if r == sid:
                break
            if r == rid:
                chunks.append((seq, total, data[8:]))
        return chunks

    def exchange(self, payload):
        return assemble(self.exchange_raw(payload))


def assemble(chunks):
    """Byte stream from (seq, total, data) in arrival order: a sequenced message (total > 1)
    is ordered by seq, single datagrams are appended as they come."""
    out = b""
    pending = []
    for seq, total, data in chunks:
        if total <= 1:
            out += data
            continue
        pending.append((seq, data))
        if len(pending) == total:
            out += b"".join(d for _, d in sorted(pending))
            pending = []
    if pending:
        out += b"".join(d for _, d in sorted(pending))
    return out


def run(tests):
    """Run test functions (name -> fn) in order; print a line each and the summary."""
    passed = failed = 0
    only = os.environ.get("TEST_ONLY")
    for name, fn in tests:
        if only and only not in name:
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            print("ok   %s (%.2fs)" % (name, time.time() - t0), flush=True)
        except Exception:  # noqa: BLE001 - any failure fails the test
            failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


def collect(module_globals):
    return [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]


def main(module_globals):
    sys.exit(run(collect(module_globals)))

"""A pool of boxes behind twemproxy (Debian's nutcracker), as a fleet runs them: keys stored
through the proxy over TCP read back through it, spread over every box, and each key is readable
over UDP from exactly one box, the one ketama names (as libmemcached and mcload compute it: see
tools/ketama.c), and from no other. Writes go over TCP (UDP writes are off by default)."""
# lab: LAB_BOXES=3
import bisect
import hashlib
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import labtest as L

NKEYS = 300
# A tag per run: a second run against the same boxes must not find the first run's copies.
RUN = b"%06x" % random.randrange(1 << 24)
KEYS = [b"pool:%s:%04d" % (RUN, i) for i in range(NKEYS)]


def value_for(i):
    """20..919 bytes, so that a UDP reply fits one datagram; never contains END."""
    body = hashlib.sha256(b"pool value %d" % i).hexdigest().encode()
    return (b"v%d:" % i + body * 30)[: 20 + (i * 37) % 900]


VALUES = {k: value_for(i) for i, k in enumerate(KEYS)}


def ketama(servers):
    """The owner function of libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (twemproxy's
    "distribution: ketama" with "hash: md5"), servers of equal weight: 40 MD5 digests of
    "host-i" ("host:port-i" when the port is not 11211) give 4 points each; a key belongs to
    the first point at or after the low 32 bits of its MD5, wrapping round."""
    points = []
    for s, (host, port) in enumerate(servers):
        for i in range(40):
            name = "%s-%d" % (host, i) if port == 11211 else "%s:%d-%d" % (host, port, i)
            for w in struct.unpack("<4I", hashlib.md5(name.encode()).digest()):
                points.append((w, s))
    points.sort()
    values = [v for v, _ in points]

    def owner(key):
        if len(servers) == 1:
            return 0
        h = struct.unpack("<I", hashlib.md5(key).digest()[:4])[0]
        return points[bisect.bisect_left(values, h) % len(points)][1]

    return owner


def free_ports(n):
    """n distinct free TCP ports on loopback (held together so that they differ)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Nutcracker:
    """twemproxy with one memcached pool over the lab's boxes, on a free loopback port of the
    client namespace; its config, log and pid file live in a temporary directory."""

    def __init__(self):
        self.proc = None
        self.dir = None
        self.port = None

    def config(self, servers, port):
        lines = [
            "mcbox_pool:",
            "  listen: 127.0.0.1:%d" % port,
            "  hash: md5",
            "  distribution: ketama",
            "  auto_eject_hosts: false",
            "  timeout: 2000",
            "  server_connections: 1",
            "  servers:",
        ]
        lines += ["   - %s:%d:1" % (host, p) for host, p in servers]
        return "\n".join(lines) + "\n"

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "nutcracker.log"), errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def start(self, servers, timeout=10.0):
        binary = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
        self.dir = tempfile.mkdtemp(prefix="mcbox-pool-")
        self.port, stats_port = free_ports(2)
        conf = os.path.join(self.dir, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write(self.config(servers, self.port))
        check = subprocess.run([binary, "-t", "-c", conf], capture_output=True, text=True,
                               timeout=10)
        assert check.returncode == 0, "nutcracker rejects its config:\n%s%s" % (
            check.stdout, check.stderr)
        self.proc = subprocess.Popen(
            [binary, "-c", conf, "-o", os.path.join(self.dir, "nutcracker.log"),
             "-p", os.path.join(self.dir, "nutcracker.pid"),
             "-s", str(stats_port), "-a", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        # Bounded poll: connect until it listens, or it exits, or the deadline passes.
        deadline = time.time() + timeout
        while True:
            code = self.proc.poll()
            assert code is None, "nutcracker exited with %d:\n%s" % (code, self.log_tail())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                pass
            assert time.time() < deadline, "nutcracker not listening on 127.0.0.1:%d after %.0f s:\n%s" % (
                self.port, timeout, self.log_tail())
            time.sleep(0.05)  # refused at once: poll again

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class TcpClient:
    """memcached ASCII over one TCP connection (to the proxy)."""

    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.s.close()

    def call(self, payload, end):
        """Send payload; return the reply up to and including the first `end` terminator, or
        an error line (the proxy's SERVER_ERROR when a box is unreachable, for one)."""
        self.s.sendall(payload)
        while True:
            i = self.buf.find(end)
            if self.buf.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")) and b"\r\n" in self.buf:
                i, end = self.buf.index(b"\r\n"), b"\r\n"
            if i >= 0:
                reply, self.buf = self.buf[: i + len(end)], self.buf[i + len(end):]
                return reply
            data = self.s.recv(65536)
            assert data, "proxy closed the connection; had %r" % self.buf[:200]
            self.buf += data

    def line(self, payload):
        return self.call(payload, b"\r\n")

    def get(self, keys):
        """{key: value} of a get over keys; checks the reply's framing."""
        reply = self.call(b"get " + b" ".join(keys) + b"\r\n", b"END\r\n")
        return parse_values(reply)


def parse_values(reply):
    out = {}
    i = 0
    while True:
        j = reply.index(b"\r\n", i)
        head = reply[i:j]
        if head == b"END":
            assert j + 2 == len(reply), reply[:200]
            return out
        parts = head.split()
        assert len(parts) == 4 and parts[0] == b"VALUE", "unexpected reply line %r" % head[:200]
        n = int(parts[3])
        out[parts[1]] = reply[j + 2: j + 2 + n]
        assert reply[j + 2 + n: j + 4 + n] == b"\r\n", reply[:200]
        i = j + 4 + n


def udp_get(client, key):
    """The value of key on one box over UDP, or None on a miss."""
    try:
        r = client.request(b"get " + key + b"\r\n", idle=0.0)
    except socket.timeout:
        raise AssertionError("%s:%d did not answer a UDP get of %s" % (client.addr + (key,))) from None
    if r == b"END\r\n":
        return None
    got = parse_values(r)
    assert list(got) == [key], r[:200]
    return got[key]


PROXY = Nutcracker()
STATE = {}  # key -> index of the box that answered it over UDP


def servers():
    boxes = L.boxes()
    assert len(boxes) >= 2, "a pool needs LAB_BOXES of 2 or more; boxes: %s" % boxes
    return boxes


def proxy_client():
    assert PROXY.proc is not None, "nutcracker is not running (see test_nutcracker_listens)"
    return TcpClient(PROXY.port)


def test_every_box_answers_udp():
    for host, port in servers():
        c = L.UdpClient(host=host, port=port)
        try:
            assert udp_get(c, b"pool:absent") is None, host
        finally:
            c.close()


def test_nutcracker_listens():
    PROXY.start(servers())
    c = proxy_client()
    try:
        # Answered by the proxy itself over the pool; a miss on every box.
        assert c.get([b"pool:absent"]) == {}
    finally:
        c.close()


def test_sets_through_proxy_read_back():
    c = proxy_client()
    try:
        for k in KEYS:
            v = VALUES[k]
            r = c.line(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            assert r == b"STORED\r\n", (k, r)
        for k in KEYS:
            assert c.get([k]) == {k: VALUES[k]}, k
    finally:
        c.close()


def test_multiget_through_proxy():
    """The proxy splits a multi-key get over the boxes and joins the replies."""
    c = proxy_client()
    try:
        for first in range(0, NKEYS, 30):
            keys = KEYS[first: first + 30]
            assert c.get(keys) == {k: VALUES[k] for k in keys}, first
    finally:
        c.close()


def test_each_key_on_exactly_one_box_over_udp():
    boxes = servers()
    clients = [L.UdpClient(host=h, port=p) for h, p in boxes]
    try:
        for k in KEYS:
            holders = []
            for b, c in enumerate(clients):
                v = udp_get(c, k)
                if v is not None:
                    assert v == VALUES[k], (k, boxes[b], v[:60])
                    holders.append(b)
            assert len(holders) == 1, "%s held by boxes %s" % (k, holders)
            STATE[k] = holders[0]
    finally:
        for c in clients:
            c.close()


def test_keys_spread_over_every_box():
    boxes = servers()
    assert len(STATE) == NKEYS, "owners unknown (see test_each_key_on_exactly_one_box_over_udp)"
    per_box = [sum(1 for b in STATE.values() if b == i) for i in range(len(boxes))]
    print("# keys per box:", per_box)
    assert min(per_box) > 0, per_box


def test_owner_is_the_ketama_choice():
    """twemproxy, libmemcached and mcload agree on the owner (ketama_check proves mcload's
    against libmemcached's; this proves twemproxy's against the same rule)."""
    owner = ketama(servers())
    assert len(STATE) == NKEYS, "owners unknown (see test_each_key_on_exactly_one_box_over_udp)"
    wrong = [(k, STATE[k], owner(k)) for k in KEYS if STATE[k] != owner(k)]
    assert not wrong, "%d keys not on the ketama owner, e.g. (key, box, ketama): %s" % (
        len(wrong), wrong[:5])


def test_delete_through_proxy_reaches_the_owner():
    boxes = servers()
    gone = KEYS[:30]
    c = proxy_client()
    clients = [L.UdpClient(host=h, port=p) for h, p in boxes]
    try:
        for k in gone:
            assert c.line(b"delete " + k + b"\r\n") == b"DELETED\r\n", k
        assert c.get(gone) == {}
        for k in gone:
            assert all(udp_get(u, k) is None for u in clients), k
        kept = KEYS[30:60]
        assert c.get(kept) == {k: VALUES[k] for k in kept}
    finally:
        c.close()
        for u in clients:
            u.close()


if __name__ == "__main__":
    try:
        rc = L.run(L.collect(globals()))
    finally:
        PROXY.stop()
    sys.exit(rc)

"""memcached over TCP through the lab box's kernel path, with the defaults (UDP read-only): real
clients (memccapable, pymemcache, memcslap, memccp/memccat, memcstat), the differential test
over TCP against stock memcached, one store for UDP and TCP, and too-large UDP replies
fetched over TCP."""
# lab: MCBOX_ARGS=
import os
import socket
import subprocess
import time

import differential as D
import labtest as L

BOX = "%s:%d" % (L.SERVER_IP, L.MC_PORT)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MemcachedTcp:
    """Stock memcached on loopback TCP inside the client namespace (the oracle)."""

    def __init__(self):
        self.port = free_tcp_port()
        self.p = subprocess.Popen(["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(self.port),
                                   "-U", "0", "-m", "64", "-t", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)  # polling for the listener, bounded by the deadline
        raise RuntimeError("memcached did not start")

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def tcp_exchange(host, port, req):
    """Send one request on a fresh connection, then a sentinel in the connection's protocol
    (memcached fixes it by the first byte): the reply is everything before the sentinel's
    answer, or everything until the server closed."""
    binary = req[:1] == b"\x80"
    sentinel = D.b(0x0a, opaque=0x5e5e5e5e) if binary else b"mn\r\n"
    # NOOP's answer: magic 0x81, opcode, no key, extras or body, status 0, our opaque, CAS 0.
    answer = b"\x81\x0a" + b"\0" * 10 + b"\x5e" * 4 + b"\0" * 8 if binary else b"MN\r\n"
    # A request's own mn lines are answered MN too: wait for all of them and the sentinel's.
    n_mn = 1 if binary else 1 + sum(1 for line in req.split(b"\n")
                                    if line.rstrip(b"\r") == b"mn" or line.startswith(b"mn "))
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(req + sentinel)
        out = b""
        while True:
            if out.endswith(answer) and (binary or out.count(answer) >= n_mn):
                return out[:-len(answer)]
            try:
                data = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return out
            if not data:
                return out
            out += data
    finally:
        s.close()


def test_differential_over_tcp_against_memcached():
    mc = MemcachedTcp()
    try:
        D.compare(lambda req: tcp_exchange("127.0.0.1", mc.port, req),
                  lambda req: tcp_exchange(L.SERVER_IP, L.MC_PORT, req), " over TCP")
    finally:
        mc.stop()


def test_memccapable_passes():
    r = subprocess.run(["memccapable", "-h", L.SERVER_IP, "-p", str(L.MC_PORT)],
                       capture_output=True, text=True, timeout=300)
    failed = [line for line in r.stdout.splitlines() if "[pass]" not in line and "[skip]" not in line
              and line.strip() and "All tests passed" not in line]
    assert r.returncode == 0 and "All tests passed" in r.stdout, (r.returncode, failed, r.stderr[-500:])
    print("# memccapable: %d tests passed" % r.stdout.count("[pass]"))


def test_pymemcache():
    from pymemcache.client.base import Client
    c = Client((L.SERVER_IP, L.MC_PORT), connect_timeout=5, timeout=5, default_noreply=False)
    try:
        assert c.set("py:a", b"1") is True
        assert c.get("py:a") == b"1"
        assert c.set_many({"py:b": b"2", "py:c": b"3"}) == []
        assert c.get_many(["py:a", "py:b", "py:c", "py:none"]) == {"py:a": b"1", "py:b": b"2", "py:c": b"3"}
        value, cas = c.gets("py:a")
        assert value == b"1"
        assert c.cas("py:a", b"9", cas) is True
        assert c.cas("py:a", b"8", cas) is False
        assert c.get("py:a") == b"9"
        assert c.incr("py:a", 5) == 14
        assert c.decr("py:a", 20) == 0
        assert c.add("py:a", b"x") is False
        assert c.add("py:new", b"x") is True
        assert c.replace("py:none", b"x") is False
        assert c.replace("py:new", b"y") is True
        assert c.append("py:new", b"z") is True
        assert c.prepend("py:new", b"w") is True
        assert c.get("py:new") == b"wyz"
        assert c.touch("py:new", 100) is True
        assert c.touch("py:none", 100) is False
        assert c.delete("py:new") is True
        assert c.get("py:new") is None
        big = os.urandom(500000)
        assert c.set("py:big", big) is True
        assert c.get("py:big") == big
        st = c.stats()
        for name in (b"curr_connections", b"total_connections", b"limit_maxbytes", b"threads",
                     b"cmd_get", b"get_hits", b"uptime", b"version", b"curr_items", b"bytes"):
            assert name in st, name
        assert st[b"curr_connections"] >= 1
        assert st[b"threads"] >= 1
    finally:
        c.close()


def test_libmemcached_tools():
    path = "/tmp/mcbox-tcp-%d.txt" % os.getpid()
    data = os.urandom(20000).hex()
    with open(path, "w") as f:
        f.write(data)
    try:
        r = subprocess.run(["memccp", "--servers=" + BOX, path], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["memccat", "--servers=" + BOX, os.path.basename(path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.rstrip("\n") == data, (r.returncode, r.stderr, len(r.stdout))
    finally:
        os.unlink(path)
    r = subprocess.run(["memcstat", "--servers=" + BOX], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "curr_connections" in r.stdout, r.stdout[-500:]
    r = subprocess.run(["memcslap", "-s", BOX, "--concurrency=4", "--execute-number=500"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Time to" in r.stdout, (r.returncode, r.stdout[-500:], r.stderr[-500:])


def tcp(req):
    return tcp_exchange(L.SERVER_IP, L.MC_PORT, req)


def test_one_store_and_read_only_udp_by_default():
    """A key set over TCP is read over UDP; UDP refuses writes by default (no handshake: a
    forged source could write)."""
    u = L.UdpClient()
    assert tcp(b"set both 5 0 4\r\nboth\r\n") == b"STORED\r\n"
    assert u.request(b"get both\r\n") == b"VALUE both 5 4\r\nboth\r\nEND\r\n"
    assert u.request(b"set both 0 0 1\r\nx\r\n") == b"CLIENT_ERROR writes not allowed\r\n"
    assert u.request(b"delete both\r\n") == b"CLIENT_ERROR writes not allowed\r\n"
    assert tcp(b"get both\r\n") == b"VALUE both 5 4\r\nboth\r\nEND\r\n"


def test_too_large_for_udp_is_fetched_over_tcp():
    value = os.urandom(100000)
    assert tcp(b"set huge 0 0 100000\r\n" + value + b"\r\n") == b"STORED\r\n"
    u = L.UdpClient()
    assert u.request(b"get huge\r\n") == b"SERVER_ERROR response too large for UDP; retry over TCP\r\n"
    assert tcp(b"get huge\r\n") == b"VALUE huge 0 100000\r\n" + value + b"\r\nEND\r\n"


def test_kernel_path_counters():
    t = L.telemetry()
    assert t["exc_to_kernel"] > 0 and t["exc_from_kernel"] > 0, t
    assert t["total_connections"] > 0, t


if __name__ == "__main__":
    raise SystemExit(L.run(L.collect(globals())))

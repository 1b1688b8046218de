"""Warm restart (-e FILE) in the lab: keys, flags, TTLs and CAS survive a clean stop (SIGTERM,
SIGUSR1) and a start with the same settings; a changed -m or a kill -9 starts cold and the log
says why. The box is stopped and started by scripts/lab.sh stop/start in run.sh's namespaces
(labtest.lab), the network stays; each start appends to build/lab/mcbox.log. The file is
removed at the end, whatever happened."""
# lab: MCBOX_ARGS="-e /dev/hugepages/mcbox-restart-test --zero-copy-min=2048"
import os
import random
import re
import signal
import socket
import time

import labtest as L

FILE = "/dev/hugepages/mcbox-restart-test"
ARGS = "-e " + FILE + " --zero-copy-min=2048"
LOG = os.path.join(L.LAB_DIR, "mcbox.log")
_since = 0  # where the running box's part of the log begins (lab.sh start appends)


class Tcp:
    """One memcached TCP connection to box 0, line by line."""

    def __init__(self):
        self.s = socket.create_connection((L.SERVER_IP, L.MC_PORT), timeout=5)
        self.buf = b""

    def close(self):
        self.s.close()

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def data(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def ask(self, req):
        self.s.sendall(req)
        return self.line()

    def set(self, key, val, flags=0, ttl=0):
        r = self.ask(b"set %s %d %d %d\r\n%s\r\n" % (key, flags, ttl, len(val), val))
        assert r == b"STORED", r

    def gets(self, key):
        """(value, flags, cas) or None."""
        head = self.ask(b"gets %s\r\n" % key).split()
        if head == [b"END"]:
            return None
        assert head[0] == b"VALUE" and head[1] == key, head
        val = self.data(int(head[3]))
        assert self.line() == b"END"
        return val, int(head[2]), int(head[4])

    def ttl(self, key):
        """The remaining TTL meta get reports (-1: none)."""
        head = self.ask(b"mg %s t\r\n" % key).split()
        assert head[0] == b"HD", head
        return int(head[1][1:])


def key(i):
    return b"restart-key-%d" % i


def value(i):
    return b"value-%d-" % i + b"v" * (i % 300)


def restart(args=ARGS, sig="TERM", while_down=None, **env):
    """Stop box 0 with sig, run while_down, start it with args (and env for lab.sh, e.g.
    LAB_QUEUES). Returns the stop's exit status, the stopped box's log and the new box's log."""
    global _since
    out = L.lab("stop", LAB_SIGNAL=sig)
    m = re.search(r"mcbox exited with status (\S+)", out)
    assert m, out
    with open(LOG, "rb") as f:
        f.seek(_since)
        old = f.read().decode(errors="replace")
    # An orderly stop leaves no reference behind (TCP's and the mbufs' all released).
    assert "references were still held" not in old, old
    if while_down:
        while_down()
    _since = os.path.getsize(LOG)
    L.lab("start", MCBOX_ARGS=args, **env)
    with open(LOG, "rb") as f:
        f.seek(_since)
        new = f.read().decode(errors="replace")
    return m.group(1), old, new


def test_a_new_file_starts_cold():
    # Whatever an earlier run left: the file goes, and the box starts empty.
    status, old, new = restart(while_down=lambda: os.path.exists(FILE) and os.unlink(FILE))
    assert status == "0", (status, old)
    assert "warm restart: saved " in old, old
    assert "warm restart: cold start: no saved cache in the file (%s)" % FILE in new, new


def test_keys_ttl_and_cas_survive_a_clean_restart():
    c = Tcp()
    before = {}
    for i in range(300):
        c.set(key(i), value(i), flags=i, ttl=3600 if i % 10 == 0 else 0)
        before[i] = c.gets(key(i))
    max_cas = max(cas for _, _, cas in before.values())
    ttl0 = c.ttl(key(0))
    assert 3590 <= ttl0 <= 3600, ttl0
    c.close()

    def down_for_a_while():
        # The box is down for 2 s: the TTL counts that time too. And FILE stays.
        assert os.path.getsize(FILE) >= 64 << 20
        time.sleep(2)

    t0 = time.time()
    status, old, new = restart(while_down=down_for_a_while)
    assert status == "0", (status, old)
    assert re.search(r"warm restart: saved 300 items in %s" % FILE, old), old
    m = re.search(r"warm restart: reattached %s: 300 items, clock moved on by (\d+) s" % FILE, new)
    assert m, new
    assert int(m.group(1)) >= 2, m.group(0)

    c = Tcp()
    for i in range(300):
        assert c.gets(key(i)) == before[i], (i, c.gets(key(i)), before[i])
    ttl1 = c.ttl(key(0))
    elapsed = time.time() - t0
    assert ttl0 - ttl1 >= 2 and ttl0 - ttl1 <= elapsed + 2, (ttl0, ttl1, elapsed)
    assert c.ttl(key(1)) == -1
    # CAS goes on above every saved one; a value changes as before.
    c.set(b"after-restart", b"x")
    assert c.gets(b"after-restart")[2] > max_cas
    assert c.ask(b"incr after-restart 1\r\n") == b"CLIENT_ERROR cannot increment or decrement non-numeric value"
    c.set(key(5), b"41")
    assert c.ask(b"incr %s 1\r\n" % key(5)) == b"42"
    c.close()
    # UDP reads the same store.
    u = L.UdpClient()
    assert u.request(b"get %s\r\n" % key(7), idle=0.0) == \
        b"VALUE %s 7 %d\r\n%s\r\nEND\r\n" % (key(7), len(value(7)), value(7))
    u.close()


def test_zero_copy_replies_from_the_file():
    """Values of at least --zero-copy-min go out from item memory, which is now the file's
    (registered with DPDK as external memory), before and after a restart."""
    big = bytes(random.getrandbits(8) for _ in range(4500))
    c = Tcp()
    c.set(b"zc", big, flags=3)
    c.close()
    want = b"VALUE zc 3 4500\r\n" + big + b"\r\nEND\r\n"
    for rnd in range(2):
        u = L.UdpClient()
        before = L.telemetry()["zc_values"]
        assert u.request(b"get zc\r\n", idle=0.0) == want
        assert L.telemetry()["zc_values"] >= before + 1
        u.close()
        if rnd == 0:
            status, old, new = restart()
            assert status == "0", (status, old)
            assert "warm restart: reattached %s: 302 items" % FILE in new, new
            assert "zero-copy values off" not in new, new


def test_sigusr1_saves_too():
    status, old, new = restart(sig="USR1")
    assert status == "0", (status, old)
    assert "warm restart: reattached %s: 302 items" % FILE in new, new
    c = Tcp()
    assert c.gets(key(3))[0] == value(3)
    c.close()


def test_a_changed_m_starts_cold():
    status, old, new = restart(args=ARGS + " -m 32")
    assert status == "0", (status, old)
    assert "warm restart: cold start: -m changed (saved 64 MiB, now 32 MiB) (%s)" % FILE in new, new
    c = Tcp()
    assert c.gets(key(3)) is None
    c.set(key(3), b"small")
    c.close()
    # And back: the 32 MiB box saved cleanly, but it is not what -m 64 lays out.
    status, old, new = restart()
    assert status == "0", (status, old)
    assert "warm restart: saved 1 items" in old, old
    assert "warm restart: cold start: -m changed (saved 32 MiB, now 64 MiB) (%s)" % FILE in new, new


def test_changed_queues_start_cold():
    """Two queues mean two partitions, another layout: cold, and back again."""
    c = Tcp()
    c.set(b"q", b"1")
    c.close()
    status, old, new = restart(LAB_QUEUES="2")
    assert status == "0", (status, old)
    assert "warm restart: cold start: partitions changed (saved 1, now 2: ports x --queues)" in new, new
    c = Tcp()
    assert c.gets(b"q") is None
    c.close()
    status, old, new = restart(LAB_QUEUES="1")
    assert status == "0", (status, old)
    assert "warm restart: cold start: partitions changed (saved 2, now 1: ports x --queues)" in new, new


def test_kill_9_starts_cold():
    c = Tcp()
    for i in range(50):
        c.set(key(i), value(i))
    c.close()
    status, old, new = restart(sig="KILL")
    assert status == "137", (status, old)
    assert "warm restart: saved" not in old, old
    assert "warm restart: cold start: not stopped cleanly (killed or crashed while running) (%s)" \
        % FILE in new, new
    c = Tcp()
    assert c.gets(key(1)) is None
    c.set(key(1), b"again")
    assert c.gets(key(1))[0] == b"again"
    c.close()


def _cleanup():
    # The running box keeps its mapping; the file's memory goes when it stops.
    if os.path.exists(FILE):
        os.unlink(FILE)


def _on_term(signum, frame):
    raise SystemExit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_term)  # run.sh's timeout: still remove the file
    try:
        L.main(globals())
    finally:
        _cleanup()

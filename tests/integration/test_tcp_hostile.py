"""Hostile TCP clients against the lab box: garbage streams, a slow drip (slowloris), ten
thousand connections, huge pipelines. Each costs bounded memory, is counted, and the box keeps
serving."""
# lab: MCBOX_ARGS="--read-timeout=2 --max-conns=2000 --conn-memory=32"
import os
import resource
import select
import socket
import threading
import time

import labtest as L

ADDR = (L.SERVER_IP, L.MC_PORT)


def mcbox_rss_kb():
    pid = open(os.path.join(L.LAB_DIR, "mcbox.pid")).read().strip()
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def stat(name):
    return L.telemetry()[name]


def wait_until(cond, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)  # polling a counter, bounded by the deadline
    raise AssertionError("timed out waiting for " + what)


def still_serving():
    s = socket.create_connection(ADDR, timeout=5)
    s.sendall(b"version\r\n")
    assert s.recv(100).startswith(b"VERSION"), "box stopped serving"
    s.close()


def test_garbage_streams():
    """Random bytes (4 MB on each of 4 connections, nobody reading the replies): each
    connection is answered ERROR or closed, memory stays bounded, nothing is held after."""
    rss0 = mcbox_rss_kb()
    socks = [socket.create_connection(ADDR, timeout=5) for _ in range(4)]
    junk = os.urandom(1 << 20)
    for s in socks:
        s.setblocking(False)
    sent = [0] * len(socks)
    deadline = time.time() + 30
    while time.time() < deadline and any(n < 4 << 20 for n in sent):
        _, w, _ = select.select([], [s for s, n in zip(socks, sent) if n < 4 << 20], [], 1)
        for s in w:
            i = socks.index(s)
            try:
                sent[i] += s.send(junk[sent[i] % len(junk):])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sent[i] = 4 << 20  # closed by the box
    assert mcbox_rss_kb() - rss0 < 64 * 1024, "RSS grew by %d kB" % (mcbox_rss_kb() - rss0)
    for s in socks:
        s.close()
    wait_until(lambda: stat("curr_connections") == 0, what="connections to close")
    assert stat("conn_buffer_bytes") == 0
    still_serving()


def test_slow_drip_is_closed():
    """Slowloris: partial requests dripped a byte at a time are closed after --read-timeout
    (2 s here), whatever the drip rate; a slow drip cannot hold a connection for long."""
    socks = []
    for i in range(20):
        s = socket.create_connection(ADDR, timeout=5)
        s.sendall(b"set drip%d 0 0 100\r\nab" % i if i % 2 else b"get dr")
        socks.append(s)
    before = stat("conn_closed_slow")
    t0 = time.time()
    closed = set()
    while len(closed) < len(socks) and time.time() - t0 < 15:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.send(b"x")
            except OSError:
                closed.add(i)
                continue
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    if s.recv(100) == b"":
                        closed.add(i)
                except OSError:
                    closed.add(i)
        time.sleep(0.2)  # the drip itself
    elapsed = time.time() - t0
    for s in socks:
        s.close()
    assert len(closed) == len(socks), "%d of %d dripping connections still open" % (len(socks) - len(closed), len(socks))
    assert elapsed < 10, elapsed
    assert stat("conn_closed_slow") >= before + len(socks)
    still_serving()


def test_ten_thousand_connections():
    """10,000 connections against --max-conns 2000: the first 2000 are served, the rest told
    'ERROR Too many open connections' and closed; memory stays bounded; all close cleanly."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 12000), max(hard, 12000)))
    rss0 = mcbox_rss_kb()
    rejected0 = stat("rejected_connections")
    socks = []
    refused = 0
    try:
        for _ in range(10000):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(ADDR)
            except BlockingIOError:
                pass
            socks.append(s)
        # Each says something once connected: a connection whose final ACK a full accept
        # queue dropped (with syncookies the client believes in it) then reaches the server.
        pending = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        deadline = time.time() + 120
        while pending and time.time() < deadline:
            for fd, _ in poller.poll(1000):
                try:
                    pending[fd].send(b"version\r\n")
                except OSError:
                    pass  # refused and closed already: it has been counted
                poller.unregister(fd)
                del pending[fd]
        # Every connection completes and is either kept or told it is one too many.
        wait_until(lambda: stat("curr_connections") + stat("rejected_connections") - rejected0 >= 10000,
                   timeout=120, what="10000 connections accepted or rejected")
        assert stat("curr_connections") <= 2000
        for s in socks:
            try:
                data = s.recv(100)
            except BlockingIOError:
                continue
            except OSError:
                refused += 1
                continue
            if data.startswith(b"ERROR Too many open connections") or data == b"":
                refused += 1
        rss = mcbox_rss_kb() - rss0
        rejected = stat("rejected_connections") - rejected0
        print("# 10000 connections: %d refused (%d read the refusal already), %d held; mcbox RSS +%d kB"
              % (rejected, refused, stat("curr_connections"), rss))
        assert rejected >= 8000, rejected
        assert refused > 0
        assert rss < 128 * 1024, rss
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: stat("curr_connections") == 0, timeout=60, what="connections to close")
    still_serving()


def test_huge_pipeline():
    """200,000 gets sent in one go while replies are read as they come: every reply arrives,
    in order; the box stops reading while the client is slow to read, so memory stays flat."""
    s = socket.create_connection(ADDR, timeout=10)
    s.sendall(b"set pipe 0 0 100\r\n" + b"p" * 100 + b"\r\n")
    assert s.recv(100) == b"STORED\r\n"
    n = 200000
    req = b"get pipe\r\n" * n
    one = b"VALUE pipe 0 100\r\n" + b"p" * 100 + b"\r\nEND\r\n"
    rss0 = mcbox_rss_kb()
    err = []

    def sender():
        try:
            s.sendall(req)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender)
    th.start()
    got = 0
    want = len(one) * n
    head = b""
    while got < want:
        data = s.recv(1 << 20)
        if not data:
            break
        if len(head) < len(one):
            head += data[:len(one)]
        got += len(data)
        if got < 2 << 20:
            time.sleep(0.001)  # a slow reader for the first replies: the box must hold back
    th.join(timeout=60)
    s.close()
    assert not err, err
    assert got == want, (got, want)
    assert head[:len(one)] == one
    assert mcbox_rss_kb() - rss0 < 64 * 1024
    wait_until(lambda: stat("conn_buffer_bytes") == 0, what="buffers released")


if __name__ == "__main__":
    raise SystemExit(L.run(L.collect(globals())))

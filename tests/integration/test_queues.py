"""Two queues, two partitions: keys written from many source ports are read back from many other
source ports (so writer and reader land on different queues), concurrent writers and readers of
the same keys never see a torn value, and no mbuf leaks."""
# lab: LAB_QUEUES=2 MCBOX_ARGS="--udp-writes=on --udp-admin=on"
import hashlib
import random
import struct
import threading
import time

import labtest as L


def value_for(key, gen):
    """A self-checking value: generation, length, and a digest of both repeated."""
    body = hashlib.sha256(b"%s:%d" % (key, gen)).hexdigest().encode()
    n = 40 + gen % 300
    return (b"%d:%d:" % (gen, n) + (body * 20))[:n]


def check_value(key, v):
    gen, n, _ = v.split(b":", 2)
    return v == value_for(key, int(gen)) and len(v) == int(n)


def settle_mempool():
    """The pool's free count once mcbox is idle (bounded poll: TX completions settle)."""
    deadline = time.time() + 5
    last = None
    while time.time() < deadline:
        v = L.telemetry()["mempool_avail"]
        if v == last:
            return v
        last = v
        time.sleep(0.1)
    return last


def test_keys_cross_queues():
    before_pool = settle_mempool()
    keys = [b"xq:%05d" % i for i in range(3000)]
    writers = [L.UdpClient() for _ in range(16)]
    for i, k in enumerate(keys):
        c = writers[i % len(writers)]
        r = c.request(b"set " + k + b" 0 0 8\r\n" + struct.pack("!Q", i) + b"\r\n", idle=0.0)
        assert r == b"STORED\r\n", (k, r)
    readers = [L.UdpClient() for _ in range(16)]
    random.shuffle(keys)
    for i, k in enumerate(keys):
        c = readers[(i * 7) % len(readers)]
        r = c.request(b"get " + k + b"\r\n", idle=0.0)
        n = int(k.split(b":")[1])
        assert r == b"VALUE " + k + b" 0 8\r\n" + struct.pack("!Q", n) + b"\r\nEND\r\n", (k, r)
    q = L.telemetry("/mcbox/queues")
    per_q = [q["q%d" % i]["udp_requests"] for i in range(2)]
    print("# requests per queue:", per_q)
    assert min(per_q) > 500, "traffic did not reach both queues: %s" % per_q
    for c in writers + readers:
        c.close()
    assert settle_mempool() == before_pool, "mbufs leaked"


def test_concurrent_writers_and_readers_never_see_torn_values():
    keys = [b"tq:%d" % i for i in range(50)]
    stop = time.time() + 3.0
    errors = []
    counts = {"reads": 0, "writes": 0}

    def writer(seed):
        c = L.UdpClient(timeout=1.0)
        rnd = random.Random(seed)
        gen = seed * 1000000
        while time.time() < stop:
            k = rnd.choice(keys)
            gen += 1
            v = value_for(k, gen)
            rid = c.send_raw(b"set " + k + b" 0 0 %d noreply\r\n" % len(v) + v + b"\r\n")
            counts["writes"] += 1
        c.close()

    def reader(seed):
        c = L.UdpClient(timeout=1.0)
        rnd = random.Random(seed)
        while time.time() < stop:
            k = rnd.choice(keys)
            try:
                r = c.request(b"get " + k + b"\r\n", idle=0.0)
            except OSError:
                continue
            counts["reads"] += 1
            if r == b"END\r\n":
                continue
            head, _, rest = r.partition(b"\r\n")
            parts = head.split()
            if len(parts) != 4 or parts[1] != k:
                errors.append((k, r[:100]))
                continue
            n = int(parts[3])
            v = rest[:n]
            if rest[n:] != b"\r\nEND\r\n" or not check_value(k, v):
                errors.append((k, r[:200]))
        c.close()

    ts = [threading.Thread(target=writer, args=(i + 1,)) for i in range(3)]
    ts += [threading.Thread(target=reader, args=(i + 100,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("# concurrent: %d writes, %d reads, %d bad" % (counts["writes"], counts["reads"], len(errors)))
    assert counts["reads"] > 100
    assert not errors, errors[:3]


def test_one_port_per_queue_and_steering_reported():
    """With N queues, ports 11211..11211+N-1 are served (clients that know the key's partition
    pick its owner's port; rte_flow steers them where the NIC can), and the log says whether
    the port steers."""
    for port in (L.MC_PORT, L.MC_PORT + 1):
        c = L.UdpClient(port=port)
        assert c.request(b"set p%d 0 0 2\r\nok\r\nget p%d\r\n" % (port, port), idle=0.0).startswith(b"STORED")
        c.close()
    # The next port is not memcached's: dropped and counted.
    before = L.telemetry()["drop_udp_port"]
    c = L.UdpClient(port=L.MC_PORT + 2)
    c.send_raw(b"get x\r\n")
    assert L.wait_counter("drop_udp_port", before + 1) == before + 1
    log = open(L.LAB_DIR + "/mcbox.log").read()
    assert "rte_flow" in log, "no steering line in the log"


if __name__ == "__main__":
    L.main(globals())

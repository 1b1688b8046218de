"""memcached over UDP through the lab: the differential test against stock memcached, real
clients (memccp --udp, memcaslap -U), multi-datagram replies, request-id echo, framing drops."""
# lab: MCBOX_ARGS="--udp-writes=on --udp-admin=on --zero-copy-min=2048"
import os
import random
import shutil
import socket
import struct
import subprocess
import time

import differential as D
import labtest as L


def test_differential_against_memcached():
    reqs = D.requests()
    assert len(reqs) >= 150, len(reqs)
    mc = L.Memcached()
    try:
        a = L.SentinelClient("127.0.0.1", mc.port, timeout=3)
        m = L.SentinelClient(L.SERVER_IP, L.MC_PORT, timeout=3)
        D.compare(a.exchange, m.exchange, "")
    finally:
        mc.stop()


def test_udp_write_read_over_tcp():
    """With --udp-writes=on (this suite), a key set over UDP is read over TCP: one store."""
    c = L.UdpClient()
    assert c.request(b"set viaudp 9 0 3\r\nudp\r\n") == b"STORED\r\n"
    s = socket.create_connection((L.SERVER_IP, L.MC_PORT), timeout=5)
    s.sendall(b"get viaudp\r\n")
    want = b"VALUE viaudp 9 3\r\nudp\r\nEND\r\n"
    got = b""
    while len(got) < len(want):
        data = s.recv(100)
        if not data:
            break
        got += data
    s.close()
    assert got == want, got


def test_request_id_echo_and_multi_datagram_reply():
    c = L.UdpClient()
    value = bytes(random.getrandbits(8) for _ in range(5000))
    # A value longer than one datagram, stored over several datagrams with append.
    assert c.request(b"set mdg 7 0 1000\r\n" + value[:1000] + b"\r\n") == b"STORED\r\n"
    for off in range(1000, 5000, 1000):
        assert c.request(b"append mdg 0 0 1000\r\n" + value[off:off + 1000] + b"\r\n") == b"STORED\r\n"
    rid = c.send_raw(b"get mdg\r\n", rid=0xBEEF)
    dgrams = []
    while True:
        data, _ = c.s.recvfrom(65536)
        dgrams.append(data)
        if len(dgrams) == struct.unpack("!H", data[4:6])[0]:
            break
    hdrs = [struct.unpack("!HHHH", d[:8]) for d in dgrams]
    total = len(dgrams)
    assert total == 4, hdrs
    assert all(h[0] == rid and h[2] == total and h[3] == 0 for h in hdrs), hdrs
    assert sorted(h[1] for h in hdrs) == list(range(total))
    assert all(len(d) <= 1400 for d in dgrams)
    body = b"".join(d[8:] for d in sorted(dgrams, key=lambda d: struct.unpack("!H", d[2:4])[0]))
    assert body == b"VALUE mdg 7 5000\r\n" + value + b"\r\nEND\r\n"


def test_zero_copy_values_intact_and_released():
    """Values of at least --zero-copy-min (2048 in this suite) go out from item memory in chained mbufs: they
    arrive intact through ASCII, meta and binary, over 3+ datagrams, and once the mbufs are
    freed the item is released (no zombie, every mbuf back in the pool)."""
    c = L.UdpClient()
    value = bytes(random.getrandbits(8) for _ in range(4500))
    assert c.request(b"set zc 3 0 1000\r\n" + value[:1000] + b"\r\n") == b"STORED\r\n"
    for off in range(1000, 4500, 1000):
        chunk = value[off:off + 1000]
        assert c.request(b"append zc 0 0 %d\r\n" % len(chunk) + chunk + b"\r\n") == b"STORED\r\n"
    before = L.telemetry()["zc_values"]
    assert c.request(b"get zc\r\n", idle=0.0) == b"VALUE zc 3 4500\r\n" + value + b"\r\nEND\r\n"
    assert c.request(b"mg zc s v f\r\n", idle=0.0) == b"VA 4500 s4500 f3\r\n" + value + b"\r\n"
    assert c.request(b"mg zc v\r\n", idle=0.0) == b"VA 4500\r\n" + value + b"\r\n"
    r = c.request(struct.pack("!BBHBBHIIQ", 0x80, 0x0C, 2, 0, 0, 0, 2, 7, 0) + b"zc", idle=0.0)
    assert r[24:] == b"\0\0\0\3zc" + value, r[:40]
    assert c.request(b"get zc zc\r\n", idle=0.0) == (b"VALUE zc 3 4500\r\n" + value + b"\r\n") * 2 + b"END\r\n"
    t = L.telemetry()
    assert t["zc_values"] >= before + 6, (before, t["zc_values"])
    # Replace it: the old item was held only by mbufs, all freed after TX.
    assert c.request(b"set zc 0 0 1\r\nx\r\n") == b"STORED\r\n"
    t = L.telemetry()
    assert t["zombies"] == 0, t["zombies"]
    deadline = time.time() + 5
    while t["mempool_avail"] != t["mempool_size"] and time.time() < deadline:
        time.sleep(0.05)
        t = L.telemetry()
    assert t["mempool_avail"] == t["mempool_size"], (t["mempool_avail"], t["mempool_size"])
    c.close()


def test_framing_drops_are_counted():
    c = L.UdpClient()
    before = L.telemetry()["drop_frame"]
    c.s.sendto(b"\x00\x01\x00\x00\x00\x01\x00", (L.SERVER_IP, L.MC_PORT))          # short
    c.s.sendto(b"\x00\x01\x00\x00\x00\x01\x00\x00", (L.SERVER_IP, L.MC_PORT))      # no payload
    c.s.sendto(b"\x00\x01\x00\x00\x00\x02\x00\x00get a\r\n", (L.SERVER_IP, L.MC_PORT))  # total 2
    c.s.sendto(b"\x00\x01\x00\x00\x00\x00\x00\x00get a\r\n", (L.SERVER_IP, L.MC_PORT))  # total 0
    assert L.wait_counter("drop_frame", before + 4) == before + 4
    assert c.request(b"version\r\n").startswith(b"VERSION ")


def test_memccp_udp_stores_and_get_reads_it():
    if shutil.which("memccp") is None:
        raise AssertionError("memccp (libmemcached-tools) is not installed")
    path = "/tmp/mcbox-memccp-%d.txt" % os.getpid()
    payload = b"stored by memccp over UDP\n" * 20
    with open(path, "wb") as f:
        f.write(payload)
    try:
        r = subprocess.run(["memccp", "--udp", "--servers=%s:%d" % (L.SERVER_IP, L.MC_PORT),
                            "--flag=9", path], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        os.unlink(path)
    key = os.path.basename(path).encode()
    got = L.UdpClient().request(b"get " + key + b"\r\n")
    assert got == b"VALUE %s 9 %d\r\n%s\r\nEND\r\n" % (key, len(payload), payload), got[:200]


def test_memcaslap_udp_runs_clean():
    if shutil.which("memcaslap") is None:
        raise AssertionError("memcaslap (libmemcached-tools) is not installed")
    r = subprocess.run(["memcaslap", "-s", "%s:%d" % (L.SERVER_IP, L.MC_PORT), "-U", "-t", "3s",
                        "-T", "1", "-c", "4", "-X", "64", "-S", "1s"],
                       capture_output=True, timeout=60, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-2000:]
    stats = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("packet_disorder", "packet_drop", "udp_timeout", "cmd_get", "get_misses"):
            stats[k.strip()] = int(v.split()[0])
    tps = [l for l in out.splitlines() if l.startswith("Run time")]
    print("# memcaslap -U:", tps[-1] if tps else "?", stats)
    for k in ("packet_disorder", "packet_drop", "udp_timeout"):
        assert k in stats, "memcaslap printed no %s: %s" % (k, out[-500:])
        assert stats[k] == 0, "%s = %d" % (k, stats[k])
    assert stats["cmd_get"] > 0


def test_mcload_drives_mcbox():
    """The load generator against the lab for a second: answers come back, with timeouts (lost
    datagrams) at most 1%, for each protocol, and the JSON report is complete."""
    mcload = os.path.join(L.ROOT, "build", "mcload")
    for proto in ("ascii", "binary", "meta"):
        out = "/tmp/mcload-%d-%s.json" % (os.getpid(), proto)
        r = subprocess.run([mcload, "-s", "%s:%d" % (L.SERVER_IP, L.MC_PORT), "-d", "1", "-w", "0.2",
                            "-c", "8", "-k", "1000", "-p", proto, "--value-size", "16-200", "--json", out],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        import json
        res = json.load(open(out))
        os.unlink(out)
        print("# mcload %s: %.0f req/s, p99 %.0f us, %d timeouts" % (proto, res["rps"], res["p99_us"], res["timeouts"]))
        assert res["done"] > 100, res
        assert res["timeouts"] <= res["done"] // 100, res
        assert 0 < res["p50_us"] <= res["p99_us"] <= res["p999_us"], res


if __name__ == "__main__":
    L.main(globals())

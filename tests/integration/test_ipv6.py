"""IPv6 and large requests through the lab: ping -6, neighbor discovery, UDP and TCP over IPv6,
a 5000-byte set over UDP that the client's kernel fragments (IPv4 and IPv6) stored and read
back, and the differential test over UDP/IPv6 against stock memcached listening on IPv6.
af_xdp: the lab's af_packet fanout would reassemble IPv4 fragments in front of mcbox; a NIC
does not, and neither does XDP."""
# lab: LAB_PMD=af_xdp MCBOX_ARGS="--udp-writes=on --udp-admin=on"
import os
import socket
import subprocess
import time

import differential as D
import labtest as L


def tcp_exchange(host, payload, want_end=b"END\r\n", timeout=5):
    s = socket.create_connection((host, L.MC_PORT), timeout=timeout)
    s.sendall(payload)
    got = b""
    deadline = time.time() + timeout
    while not got.endswith(want_end) and time.time() < deadline:
        data = s.recv(65536)
        if not data:
            break
        got += data
    s.close()
    return got


def test_ping6_and_neighbor_discovery():
    r = subprocess.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", L.SERVER_IP6],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    neigh = subprocess.run(["ip", "-6", "neigh", "show", L.SERVER_IP6, "dev", L.CLIENT_IF],
                           capture_output=True, text=True).stdout.split()
    assert "lladdr" in neigh, neigh
    assert neigh[neigh.index("lladdr") + 1] == L.server_mac(), (neigh, L.server_mac())
    assert L.telemetry()["nd_replies"] >= 1


def test_udp_and_tcp_over_ipv6():
    assert tcp_exchange(L.SERVER_IP6, b"set six 5 0 3\r\nv6!\r\n", b"\r\n") == b"STORED\r\n"
    c = L.UdpClient(L.SERVER_IP6)
    assert c.request(b"get six\r\n") == b"VALUE six 5 3\r\nv6!\r\nEND\r\n"
    assert c.request(b"mg six v f\r\n") == b"VA 3 f5\r\nv6!\r\n"
    c.close()
    assert tcp_exchange(L.SERVER_IP6, b"get six\r\n") == b"VALUE six 5 3\r\nv6!\r\nEND\r\n"
    # The same store over IPv4.
    c4 = L.UdpClient()
    assert c4.request(b"get six\r\n") == b"VALUE six 5 3\r\nv6!\r\nEND\r\n"
    c4.close()


def test_5000_byte_set_fragmented_v4_and_v6():
    before = L.telemetry()["frag_reassembled"]
    for host, key in ((L.SERVER_IP, b"big4"), (L.SERVER_IP6, b"big6")):
        value = os.urandom(2500).hex().encode()  # 5000 bytes
        c = L.UdpClient(host)
        assert c.request(b"set " + key + b" 1 0 5000\r\n" + value + b"\r\n") == b"STORED\r\n"
        want = b"VALUE " + key + b" 1 5000\r\n" + value + b"\r\nEND\r\n"
        # Read back over TCP, and over UDP (a reply of several datagrams).
        assert tcp_exchange(host, b"get " + key + b"\r\n") == want, host
        assert c.request(b"get " + key + b"\r\n") == want, host
        c.close()
    assert L.telemetry()["frag_reassembled"] >= before + 2


def test_sent_frames_back_in_the_pool_when_idle():
    """af_xdp frees a sent frame's mbuf only when a later TX call finds its completion. An idle
    box still gives its last replies' buffers back (its housekeeping's TX call with no frames,
    a millisecond after the last frame went); else the pool stays a reply's datagrams short
    until the next request."""
    value = b"p" * 4000
    assert tcp_exchange(L.SERVER_IP, b"set pool 0 0 4000\r\n" + value + b"\r\n",
                        b"\r\n") == b"STORED\r\n"
    # The level with the set's reply sent (it may still hold the set's last TX burst: that
    # only makes the check below easier).
    before = L.telemetry()["mempool_avail"]
    c = L.UdpClient()
    # Three datagrams, sent in one TX burst: the last TX call before the box goes idle.
    assert c.request(b"get pool\r\n") == b"VALUE pool 0 4000\r\n" + value + b"\r\nEND\r\n"
    c.close()
    deadline = time.time() + 2
    avail = L.telemetry()["mempool_avail"]
    while avail < before and time.time() < deadline:
        time.sleep(0.02)
        avail = L.telemetry()["mempool_avail"]
    assert avail >= before, (avail, before)


def test_differential_over_ipv6():
    mc = L.Memcached(host="::1")
    try:
        a = L.SentinelClient("::1", mc.port, timeout=3)
        m = L.SentinelClient(L.SERVER_IP6, L.MC_PORT, timeout=3)
        m.request(b"flush_all\r\n")
        D.compare(a.exchange, m.exchange, " over IPv6")
    finally:
        mc.stop()


def test_libmemcached_over_ipv6():
    """A real client over TCP/IPv6: memcstat names mcbox's stats."""
    r = subprocess.run(["memcstat", "--servers=[%s]:%d" % (L.SERVER_IP6, L.MC_PORT)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "curr_items" in r.stdout, r.stdout + r.stderr


if __name__ == "__main__":
    L.main(globals())

"""Hostile IP fragments against the box, written raw on the client's veth (AF_PACKET): tiny
first fragments, overlaps, fragments that are not UDP, a flood of sets that never complete,
too many fragments, IPv6 fragment headers where the reassembly cannot take them. Each is
refused or given up and counted; memory stays bounded (the runner checks every mbuf is back
in the pool once the suite is done: held fragments time out); the box still answers."""
# lab: LAB_PMD=af_xdp MCBOX_ARGS="--udp-writes=on"
import os
import socket
import struct
import time

import labtest as L


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


class Wire:
    """Raw Ethernet frames out of the client's veth, to the box's MAC."""

    def __init__(self):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.s.bind((L.CLIENT_IF, 0))
        with open("/sys/class/net/%s/address" % L.CLIENT_IF) as f:
            self.src = mac(f.read().strip())
        self.dst = mac(L.server_mac())

    def send4(self, payload, ident, offset, more, proto=17):
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident,
                          (offset // 8) | (0x2000 if more else 0), 64, proto, 0,
                          socket.inet_aton(L.CLIENT_IP), socket.inet_aton(L.SERVER_IP))
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        self.s.send(self.dst + self.src + b"\x08\x00" + hdr + payload)

    def send6(self, payload, ident, offset, more, before=b"", first_nh=44):
        """A fragment header (after `before`, extension headers whose first type is
        first_nh) carrying payload."""
        fh = struct.pack("!BBHI", 17, 0, (offset & ~7) | (1 if more else 0), ident)
        body = before + fh + payload
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(body), first_nh, 64,
                          socket.inet_pton(socket.AF_INET6, L.CLIENT_IP6),
                          socket.inet_pton(socket.AF_INET6, L.SERVER_IP6))
        self.s.send(self.dst + self.src + b"\x86\xdd" + hdr + body)


def udp_datagram(payload, v6=False):
    """A UDP datagram to the box's memcached port with the right checksum."""
    length = 8 + len(payload)
    if v6:
        ph = (socket.inet_pton(socket.AF_INET6, L.CLIENT_IP6) +
              socket.inet_pton(socket.AF_INET6, L.SERVER_IP6) + struct.pack("!IxxxB", length, 17))
    else:
        ph = (socket.inet_aton(L.CLIENT_IP) + socket.inet_aton(L.SERVER_IP) +
              struct.pack("!xBH", 17, length))
    u = struct.pack("!HHHH", 40123, L.MC_PORT, length, 0) + payload
    ck = csum(ph + u) or 0xFFFF
    return u[:6] + struct.pack("!H", ck) + u[8:]


def set_request(key, n, rid=7):
    return struct.pack("!HHHH", rid, 0, 1, 0) + b"set %s 0 0 %d\r\n" % (key, n) + b"v" * n + b"\r\n"


def counters(*names):
    t = L.telemetry()
    return [t[n] for n in names]


def still_answers():
    c = L.UdpClient()
    assert c.request(b"get nothing\r\n") == b"END\r\n"
    c.close()


def test_refused_before_reassembly():
    w = Wire()
    d = udp_datagram(set_request(b"f1", 3000))
    (refused,) = counters("drop_ip_frag")
    w.send4(d[:4], 5001, 0, True)               # tiny first fragment: no whole UDP header
    w.send4(d[:1001], 5002, 0, True)            # a middle length not a multiple of 8
    w.send4(d[:1480], 5003, 0, True, proto=1)   # ICMP
    w.send4(d[:1480], 5004, 64800, True)        # would end past 64 KiB
    w.send6(d[:1440], 5005, 0, True, before=b"\x2c" + b"\0" * 7, first_nh=60)  # after dstopts
    assert L.wait_counter("drop_ip_frag", refused + 5) >= refused + 5
    still_answers()


def test_overlap_and_duplicates_given_up():
    w = Wire()
    d = udp_datagram(set_request(b"f2", 3000))
    (given_up,) = counters("frag_dropped")
    w.send4(d[:1480], 6001, 0, True)
    w.send4(d[1480:2960], 6001, 1480, True)
    w.send4(d[1480:2960], 6001, 1480, True)   # the same middle again
    w.send4(d[2960:], 6001, 2960, False)
    # Overlap: the second fragment starts inside the first.
    w.send4(d[:1480], 6002, 0, True)
    w.send4(d[1472:2952], 6002, 1472, True)
    w.send4(d[2960:], 6002, 2960, False)
    assert L.wait_counter("frag_dropped", given_up + 6) >= given_up + 6
    c = L.UdpClient()
    assert c.request(b"get f2\r\n") == b"END\r\n"   # nothing half-stored
    c.close()


def test_too_many_fragments_given_up():
    w = Wire()
    d = udp_datagram(set_request(b"f3", 200), v6=True)
    (given_up,) = counters("frag_dropped")
    for i in range(0, len(d), 16):               # 14 fragments of 16 bytes: more than 8
        w.send6(d[i:i + 16], 7001, i, i + 16 < len(d))
    assert L.wait_counter("frag_dropped", given_up + 8) >= given_up + 8
    c = L.UdpClient(L.SERVER_IP6)
    assert c.request(b"get f3\r\n") == b"END\r\n"
    c.close()


def test_flood_of_sets_that_never_complete():
    """1000 first fragments of distinct datagrams: the table holds at most its bound per
    worker, the rest are given up at once, the held ones when they time out; the box keeps
    answering and its memory does not move."""
    w = Wire()
    d = udp_datagram(set_request(b"f4", 3000))
    rss0 = rss_kb()
    recv0, given0 = counters("frag_received", "frag_dropped")
    for i in range(1000):
        w.send4(d[:1480], 10000 + i, 0, True)
    still_answers()
    recv1 = L.wait_counter("frag_received", recv0 + 950)
    assert recv1 >= recv0 + 950, recv1 - recv0   # af_xdp's ring may drop a few
    # All of them given up once the held ones time out (2 s).
    assert L.wait_counter("frag_dropped", given0 + (recv1 - recv0), timeout=6) >= \
        given0 + (recv1 - recv0)
    assert rss_kb() - rss0 < 8192, rss_kb() - rss0
    still_answers()


def test_a_real_fragmented_set_still_works():
    """After all that, the client kernel's own fragments of a 5000-byte set go through."""
    c = L.UdpClient()
    assert c.request(b"set f5 0 0 5000\r\n" + b"q" * 5000 + b"\r\n") == b"STORED\r\n"
    c.close()


def rss_kb():
    with open(os.path.join(L.LAB_DIR, "mcbox.pid")) as f:
        pid = f.read().strip()
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    time.sleep(0)
    L.main(globals())

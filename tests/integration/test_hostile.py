"""Hostile input from the client namespace: every case either moves its drop counter or gets
memcached's exact error, and a valid request right after it is still answered. Runs with the
safe defaults (no --udp-admin) and a low per-source request rate (500/s, with a 100 ms burst of
50 requests) for the rate-limit case."""
# lab: MCBOX_ARGS="--udp-writes=on --source-rps=500 --source-burst-ms=100"
import os
import random
import socket
import struct

from scapy.all import IP, UDP, Ether, Raw, conf, sendp  # noqa: E402

import labtest as L

conf.verb = 0
conf.iface = L.CLIENT_IF
MY_MAC = open("/sys/class/net/%s/address" % L.CLIENT_IF).read().strip()


def still_answers():
    c = L.UdpClient()
    try:
        assert c.request(b"version\r\n", idle=0.0).startswith(b"VERSION ")
    finally:
        c.close()


def eth(etype=0x0800, src=MY_MAC):
    return Ether(dst=L.server_mac(), src=src, type=etype)


def ipv4(payload, ihl=5, total=None, chksum=None, src=L.CLIENT_IP, options=b""):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total if total is not None else 20 + len(options) + len(payload),
                      7, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(L.SERVER_IP)) + options
    if chksum is None:
        s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        chksum = ~s & 0xFFFF
    return hdr[:10] + struct.pack("!H", chksum) + hdr[12:] + payload


def udp(payload, sport=40001, length=None, chksum=0):
    return struct.pack("!HHHH", sport, L.MC_PORT, length if length is not None else 8 + len(payload), chksum) + payload


def frame(body, rid=1, total=1):
    return struct.pack("!HHHH", rid, 0, total, 0) + body


def expect_counter(name, send):
    before = L.telemetry()[name]
    send()
    got = L.wait_counter(name, before + 1)
    assert got >= before + 1, "%s did not move (%d)" % (name, got)
    still_answers()


def test_truncated_headers():
    # A frame shorter than an Ethernet header cannot cross a veth (AF_PACKET refuses to send
    # it); tests/unit/dataplane sends one through the burst function instead.
    expect_counter("drop_short", lambda: sendp(eth() / Raw(b"\x45\x00\x00")))
    expect_counter("drop_udp_len", lambda: sendp(eth() / Raw(ipv4(b"\x00\x01\x02\x03"))))
    expect_counter("drop_frame", lambda: sendp(eth() / Raw(ipv4(udp(b"\x00\x01\x00\x00\x00")))))


def test_ip_header_lies():
    good = udp(frame(b"version\r\n"))
    expect_counter("drop_ip_hdr", lambda: sendp(eth() / Raw(ipv4(good, ihl=4))))
    expect_counter("drop_ip_hdr", lambda: sendp(eth() / Raw(ipv4(b"", ihl=15)[:30])))
    expect_counter("drop_ip_len", lambda: sendp(eth() / Raw(ipv4(good, total=1000))))
    expect_counter("drop_ip_len", lambda: sendp(eth() / Raw(ipv4(good, total=12))))
    expect_counter("drop_ip_cksum", lambda: sendp(eth() / Raw(ipv4(good, chksum=0xBEEF))))
    expect_counter("drop_ip_options", lambda: sendp(eth() / Raw(ipv4(good, ihl=6, options=b"\x01\x01\x01\x00"))))


def test_sources():
    good = udp(frame(b"version\r\n"))
    expect_counter("drop_l2_src", lambda: sendp(eth(src="01:00:5e:00:00:01") / Raw(ipv4(good))))
    expect_counter("drop_ip_src", lambda: sendp(eth() / Raw(ipv4(good, src="255.255.255.255"))))
    expect_counter("drop_ip_src", lambda: sendp(eth() / Raw(ipv4(good, src="224.0.0.9"))))
    # Outside the default allow list (our /24), inside the benchmarking range.
    expect_counter("drop_not_allowed", lambda: sendp(eth() / Raw(ipv4(good, src="198.19.0.9"))))


def test_udp_lies():
    body = frame(b"version\r\n")
    expect_counter("drop_udp_len", lambda: sendp(eth() / Raw(ipv4(udp(body, length=200)))))
    expect_counter("drop_udp_len", lambda: sendp(eth() / Raw(ipv4(udp(body, length=4)))))
    expect_counter("drop_udp_cksum", lambda: sendp(eth() / Raw(ipv4(udp(body, chksum=0x1234)))))
    expect_counter("drop_frame", lambda: sendp(eth() / Raw(ipv4(udp(frame(b"get a\r\n", total=0))))))
    expect_counter("drop_frame", lambda: sendp(eth() / Raw(ipv4(udp(frame(b"get a\r\n", total=2))))))


def test_protocol_abuse_gets_memcached_errors():
    c = L.UdpClient()
    k251 = b"k" * 251
    cases = [
        (b"get " + k251 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"set " + k251 + b" 0 0 1\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"set k\x01\x02 0 0 1\r\nx\r\nget k\x01\x02\r\n", b"STORED\r\nVALUE k\x01\x02 0 1\r\nx\r\nEND\r\n"),
        (b"set n 0 0 123456789012345678901234567890\r\nx\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"incr n 123456789012345678901234567890\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"touch n 123456789012345678901234567890\r\n", b"CLIENT_ERROR invalid exptime argument\r\n"),
        (b"stats\r\n", b"CLIENT_ERROR stats not allowed\r\n"),
        (b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n"),
        # Binary: key and extras longer than the body.
        (struct.pack("!BBHBBHIIQ", 0x80, 0, 10, 0, 0, 0, 5, 1, 0) + b"x" * 10,
         struct.pack("!BBHBBHIIQ", 0x81, 0, 0, 0, 0, 0x81, 15, 1, 0) + b"Unknown command"),
    ]
    for req, want in cases:
        got = c.request(req, idle=0.2)
        assert got == want, (req[:60], got[:200])
        still_answers()
    # A binary body longer than the datagram: no reply, counted as incomplete.
    before = L.telemetry()["proto_incomplete"]
    c.send_raw(struct.pack("!BBHBBHIIQ", 0x80, 1, 2, 8, 0, 0, 0x7FFFFFFF, 1, 0) + b"\0" * 10)
    assert L.wait_counter("proto_incomplete", before + 1) >= before + 1
    still_answers()
    c.close()


def test_garbage_payloads():
    c = L.UdpClient()
    rnd = random.Random(5)
    for n in (1, 7, 100, 1000, 1390):
        junk = bytes(rnd.getrandbits(8) for _ in range(n))
        c.send_raw(junk)
        c.send_raw(b"\x80" + junk)
    still_answers()
    # 65,000 bytes: fragmented on the wire; the lab's AF_PACKET fanout reassembles it into a
    # frame cut at 2 KiB whose IPv4 length is far past it: one drop_ip_len, and no reply.
    c.close()  # the junk above was answered with ERRORs on that socket; use a fresh one
    big = L.UdpClient()
    before = L.telemetry()["drop_ip_len"]
    big.s.sendto(struct.pack("!HHHH", 1, 0, 1, 0) + os.urandom(65000), (L.SERVER_IP, L.MC_PORT))
    assert L.wait_counter("drop_ip_len", before + 1) == before + 1
    big.s.settimeout(0.3)
    try:
        data, _ = big.s.recvfrom(65536)
        raise AssertionError("a reply to a 65,000-byte datagram: %r" % data[:40])
    except socket.timeout:
        pass
    big.close()
    still_answers()


def counters_after(send, moved, still):
    """Run send(); wait until every counter in moved has moved; return the telemetry after."""
    before = L.telemetry()
    send()
    for name in moved:
        assert L.wait_counter(name, before[name] + 1) >= before[name] + 1, name + " did not move"
    after = L.telemetry()
    for name in still:
        assert after[name] == before[name], "%s moved: %d -> %d" % (name, before[name], after[name])
    return after


def test_reflection_loops_draw_nothing():
    """Datagrams from the ports of services that answer anything (the CVE-2024-2169 class: two
    reflectors ping-pong one spoofed datagram forever) are counted drops, not answered."""
    for sport in (11211, 53, 19, 123, 1900):
        counters_after(lambda: sendp(eth() / Raw(ipv4(udp(frame(b"ERROR\r\n"), sport=sport)))),
                       ["drop_src_port"], ["udp_requests"])
    still_answers()


def test_forged_sources_draw_nothing():
    """A source outside the allow list gets nothing reflected to it: no memcached reply, no
    ICMP echo reply, no ARP reply."""
    from scapy.all import ARP, ICMP
    forged = "198.19.0.9"
    counters_after(lambda: sendp(eth() / Raw(ipv4(udp(frame(b"version\r\n")), src=forged))),
                   ["drop_not_allowed"], ["udp_requests"])
    counters_after(lambda: sendp(eth() / IP(src=forged, dst=L.SERVER_IP) / ICMP()),
                   ["drop_not_allowed"], ["icmp_replies"])
    counters_after(lambda: sendp(Ether(dst="ff:ff:ff:ff:ff:ff", src=MY_MAC) /
                                 ARP(op=1, hwsrc=MY_MAC, psrc=forged, pdst=L.SERVER_IP)),
                   ["drop_not_allowed"], ["arp_replies"])
    # Our own address and our subnet's broadcast as sources: dropped too.
    for src in (L.SERVER_IP, "198.18.0.255", "198.18.0.0"):
        counters_after(lambda: sendp(eth() / IP(src=src, dst=L.SERVER_IP) / ICMP()),
                       ["drop_ip_src"], ["icmp_replies"])
    still_answers()


def test_source_rate_limit():
    """A source over its request rate is dropped and counted; once its flood has drained the
    bucket refills and the source is served again."""
    import time
    before = L.telemetry()["drop_ratelimit"]
    c = L.UdpClient()
    # Far more than --source-rps allows (this suite's lab runs with --source-rps 500).
    for _ in range(3000):
        c.send_raw(b"get x\r\n")
    assert L.wait_counter("drop_ratelimit", before + 1) > before
    c.close()
    # Wait until the flood has drained: the drop counter holds still for 300 ms (bounded).
    deadline = time.time() + 10
    last, still_since = L.telemetry()["drop_ratelimit"], time.time()
    while time.time() < deadline and time.time() - still_since < 0.3:
        time.sleep(0.05)
        now = L.telemetry()["drop_ratelimit"]
        if now != last:
            last, still_since = now, time.time()
    # A bucket of 500/s refills a token every 2 ms: the source is served again.
    still_answers()
    still_answers()


if __name__ == "__main__":
    L.main(globals())

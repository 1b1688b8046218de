"""Amplification with the defaults: no request datagram draws more than --udp-reply-max (64 KiB)
of replies, whatever it asks for; a larger reply is one short SERVER_ERROR telling the client
to fetch it over TCP; datagrams from reflectors' ports and forged sources draw nothing. Prints the worst reply/request ratio measured on the wire (Ethernet, IP,
UDP and memcached headers counted on both sides), which the README quotes."""
# lab: MCBOX_ARGS="--udp-writes=on"
import struct

import labtest as L
# The hostile suite's reflection and forged-source checks, here with the defaults as well.
from test_hostile import test_forged_sources_draw_nothing, test_reflection_loops_draw_nothing  # noqa: F401

CAP = 64 * 1024
TOO_LARGE = b"SERVER_ERROR response too large for UDP; retry over TCP\r\n"
WIRE = 14 + 20 + 8  # Ethernet, IPv4, UDP headers around each datagram


def grow(c, key, size):
    """Store a value of size bytes with a set and appends, each datagram under 1400 bytes."""
    chunk = 1300
    body = b"v" * min(chunk, size)
    assert c.exchange(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(body), body)) == b"STORED\r\n"
    left = size - len(body)
    sent = 0
    while left > 0:
        n = min(chunk, left)
        c.send_raw(b"append %s 0 0 %d noreply\r\n%s\r\n" % (key, n, b"a" * n))
        left -= n
        sent += 1
        # Flow control: every 32 appends, wait for an answer, so the RX ring never
        # overflows while mcbox copies a growing value (the ASan build is slow at it).
        if sent % 32 == 0:
            assert c.exchange(b"mn\r\n") == b"MN\r\n"
    got = c.exchange(b"mg %s s\r\n" % key)
    assert got == b"HD s%d\r\n" % size, got[:80]


def wire_ratio(request, chunks):
    """Reply bytes on the wire over request bytes on the wire."""
    req = WIRE + 8 + len(request)
    rep = sum(WIRE + 8 + len(d) for _, _, d in chunks)
    return rep / req, rep


worst = [0.0, b""]


def measure(c, request):
    chunks = c.exchange_raw(request)
    payload = b"".join(d for _, _, d in sorted(chunks))
    assert len(payload) <= CAP, (request[:40], len(payload))
    ratio, _ = wire_ratio(request, chunks)
    if ratio > worst[0]:
        worst[0], worst[1] = ratio, request
    return payload


def test_megabyte_value_draws_one_short_line():
    c = L.SentinelClient(timeout=3)
    grow(c, b"mb", 1000 * 1000)
    for req in (b"get mb\r\n", b"get mb mb mb mb mb mb mb mb\r\n", b"gets mb mb\r\n",
                b"mg mb v\r\n"):
        assert measure(c, req) == TOO_LARGE, req
    # Binary GETK: the same refusal as a binary error (status 0x0003, too large).
    got = measure(c, struct.pack("!BBHBBHIIQ", 0x80, 0x0C, 2, 0, 0, 0, 2, 7, 0) + b"mb")
    assert got[:2] == b"\x81\x0c" and got[6:8] == b"\x00\x03", got[:24]
    c.close()


def test_values_under_the_cap_still_served_whole():
    """Ordinary gets are unaffected: a 60,000-byte value, and a multi-get whose replies add up
    to just under the cap, come back whole; one more key is refused with the line."""
    c = L.SentinelClient(timeout=3)
    grow(c, b"v60k", 60000)
    got = measure(c, b"get v60k\r\n")
    assert got.startswith(b"VALUE v60k 0 60000\r\n") and got.endswith(b"\r\nEND\r\n"), got[-40:]
    grow(c, b"v6k", 6000)
    ten = b"get" + b" v6k" * 10 + b"\r\n"
    got = measure(c, ten)
    assert got.count(b"VALUE v6k") == 10 and got.endswith(b"END\r\n")
    eleven = b"get" + b" v6k" * 11 + b"\r\n"
    got = measure(c, eleven)
    assert got.count(b"VALUE v6k") == 10 and got.endswith(TOO_LARGE), got[-80:]
    c.close()


def test_report_worst_ratio():
    assert worst[0] > 0
    # The cap bounds it: 64 KiB of payload in 48 datagrams over the smallest useful request.
    assert worst[0] < (CAP + 48 * (WIRE + 8)) / (WIRE + 8 + len(b"get x\r\n")), worst
    print("amplification: worst %.0fx (%r)" % (worst[0], worst[1][:40]), flush=True)
    c = L.UdpClient()
    c.close()


if __name__ == "__main__":
    L.main(globals())

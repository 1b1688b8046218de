"""Amplification with the defaults: no request datagram draws more than --udp-reply-max (64 KiB)
of replies, whatever it asks for; a larger reply is one short SERVER_ERROR telling the client
to fetch it over TCP; datagrams from reflectors' ports and forged sources draw nothing. UDP is
read-only by default, so the values are stored over TCP, as a fleet would. Prints the worst reply/request ratio measured on the wire (Ethernet, IP,
UDP and memcached headers counted on both sides), which the README quotes."""
# lab: MCBOX_ARGS=
import socket
import struct

import labtest as L
# The hostile suite's reflection and forged-source checks, here with the defaults as well.
from test_hostile import test_forged_sources_draw_nothing, test_reflection_loops_draw_nothing  # noqa: F401

CAP = 64 * 1024
TOO_LARGE = b"SERVER_ERROR response too large for UDP; retry over TCP\r\n"
WIRE = 14 + 20 + 8  # Ethernet, IPv4, UDP headers around each datagram


def grow(c, key, size):
    """Store a value of size bytes over TCP (UDP refuses writes by default); c is unused but
    shows which client reads it back."""
    del c
    s = socket.create_connection((L.SERVER_IP, L.MC_PORT), timeout=10)
    s.sendall(b"set %s 0 0 %d\r\n" % (key, size) + b"v" * size + b"\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        data = s.recv(100)
        assert data, "TCP connection closed"
        got += data
    s.close()
    assert got == b"STORED\r\n", got


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
    # And the default refuses the writes an amplifier would need set up by a forged source.
    c = L.UdpClient()
    assert c.request(b"set x 0 0 1\r\nx\r\n") == b"CLIENT_ERROR writes not allowed\r\n"
    c.close()


if __name__ == "__main__":
    L.main(globals())

"""Foundation: ARP, ICMP echo, malformed IPv4 dropped and counted, ping after it."""
# lab: MCBOX_ARGS=--udp-writes=on
import os
import random

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, conf, sendp, srp1, sr1  # noqa: E402

import labtest as L

conf.verb = 0
conf.iface = L.CLIENT_IF


def test_arp_reply():
    smac = open("/sys/class/net/%s/address" % L.CLIENT_IF).read().strip()
    before = L.telemetry()["arp_replies"]
    r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff", src=smac) /
             ARP(op=1, hwsrc=smac, psrc=L.CLIENT_IP, pdst=L.SERVER_IP), timeout=2)
    assert r is not None, "no ARP reply"
    assert r[ARP].op == 2 and r[ARP].psrc == L.SERVER_IP and r[ARP].pdst == L.CLIENT_IP
    assert r[ARP].hwdst == smac and r[Ether].dst == smac
    assert r[ARP].hwsrc == L.server_mac() == r[Ether].src
    assert L.telemetry()["arp_replies"] >= before + 1


def test_arp_for_other_address_is_dropped():
    smac = open("/sys/class/net/%s/address" % L.CLIENT_IF).read().strip()
    before = L.telemetry()["drop_arp"]
    sendp(Ether(dst="ff:ff:ff:ff:ff:ff", src=smac) /
          ARP(op=1, hwsrc=smac, psrc=L.CLIENT_IP, pdst="198.18.0.77"))
    assert L.wait_counter("drop_arp", before + 1) >= before + 1


def test_icmp_echo_payload_intact():
    payload = bytes(random.getrandbits(8) for _ in range(1000))
    r = sr1(IP(dst=L.SERVER_IP) / ICMP(id=0x1234, seq=7) / Raw(payload), timeout=2)
    assert r is not None, "no echo reply"
    assert r[ICMP].type == 0 and r[ICMP].id == 0x1234 and r[ICMP].seq == 7
    assert bytes(r[Raw].load) == payload
    # Checksums as the receiver sees them: recompute and compare.
    raw = bytes(r[IP])
    chk = IP(raw)
    del chk[IP].chksum
    del chk[ICMP].chksum
    chk = IP(bytes(chk))
    assert chk[IP].chksum == r[IP].chksum and chk[ICMP].chksum == r[ICMP].chksum


def _eth(etype=0x0800):
    return Ether(dst=L.server_mac(), type=etype,
                 src=open("/sys/class/net/%s/address" % L.CLIENT_IF).read().strip())


def _raw_ip(ihl=5, version=4, total=None, chksum=None, frag=0, flags=0, proto=1, options=b"",
            payload=b"\x08\x00\xf7\xff\x00\x00\x00\x00", src=L.CLIENT_IP):
    """Build an IPv4 header by hand so every field can lie."""
    import struct
    import socket
    hdr_len = ihl * 4
    body = options + payload
    tot = total if total is not None else 20 + len(body)
    h = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tot, 1,
                    (flags << 13) | frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(L.SERVER_IP))
    if chksum is None:
        s = 0
        hh = h + options[:max(0, hdr_len - 20)]
        for i in range(0, len(hh), 2):
            s += (hh[i] << 8) | (hh[i + 1] if i + 1 < len(hh) else 0)
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        chksum = (~s) & 0xFFFF
    h = h[:10] + struct.pack("!H", chksum) + h[12:]
    return Raw(h + body)


def test_malformed_ipv4_burst_dropped_and_counted():
    eth = _eth()
    cases = [
        ("drop_ip_cksum", _raw_ip(chksum=0x1234)),
        ("drop_ip_hdr", _raw_ip(ihl=4)),
        ("drop_ip_len", _raw_ip(total=1400)),
        ("drop_ip_len", _raw_ip(total=10)),
        ("drop_ip_version", _raw_ip(version=6)),
        # Fragments are covered by tests/unit/dataplane: the lab's AF_PACKET fanout group
        # has the kernel reassemble them before mcbox sees anything.
        ("drop_ip_options", _raw_ip(ihl=6, options=b"\x01\x01\x01\x00")),
        ("drop_ip_proto", _raw_ip(proto=47)),
        ("drop_ip_src", _raw_ip(src="224.0.0.1")),
        ("drop_short", Raw(b"\x45\x00")),
    ]
    before = L.telemetry()
    want = {}
    for name, layer in cases:
        want[name] = want.get(name, 0) + 1
    frames = [eth / layer for _, layer in cases]
    sendp(frames)
    for name, n in want.items():
        got = L.wait_counter(name, before[name] + n)
        assert got == before[name] + n, "%s: %d, wanted %d" % (name, got, before[name] + n)
    # And the box still answers.
    assert os.system("ping -c 1 -W 2 -q %s >/dev/null" % L.SERVER_IP) == 0


def test_other_ports_are_nobodys():
    """UDP to another port, and TCP to a port other than the TCP service's, are dropped and
    counted: the exception path does not make the host's own services reachable."""
    t0 = L.telemetry()
    sendp(_eth() / IP(src=L.CLIENT_IP, dst=L.SERVER_IP) / UDP(sport=5555, dport=9) / Raw(b"x"))
    sendp(_eth() / IP(src=L.CLIENT_IP, dst=L.SERVER_IP) / TCP(sport=5555, dport=22, flags="S"))
    assert L.wait_counter("drop_udp_port", t0["drop_udp_port"] + 1) == t0["drop_udp_port"] + 1
    assert L.wait_counter("drop_tcp_port", t0["drop_tcp_port"] + 1) == t0["drop_tcp_port"] + 1
    assert L.telemetry()["exc_to_kernel"] == t0["exc_to_kernel"]


def test_non_ip_ethertype_counted():
    before = L.telemetry()["drop_ethertype"]
    sendp(_eth(0x88B5) / Raw(b"\x00" * 46))
    assert L.wait_counter("drop_ethertype", before + 1) >= before + 1


if __name__ == "__main__":
    L.main(globals())

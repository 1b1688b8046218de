"""Two ports: every probed port gets its workers and answers the same address; a key stored
through one port is read back through the other (one store)."""
# lab: LAB_PORTS=2 MCBOX_ARGS=--udp-writes=on
import random
import struct

from scapy.all import ARP, IP, UDP, Ether, Raw, conf, srp1  # noqa: E402

import labtest as L

conf.verb = 0
MC1 = "mcc1"


def my_mac(ifname):
    return open("/sys/class/net/%s/address" % ifname).read().strip()


def port1_mac():
    r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff", src=my_mac(MC1)) /
             ARP(op=1, hwsrc=my_mac(MC1), psrc=L.CLIENT_IP, pdst=L.SERVER_IP), iface=MC1, timeout=2)
    assert r is not None, "no ARP reply on the second port"
    return r[ARP].hwsrc


def test_both_ports_driven():
    t = L.telemetry()
    assert t["ports"] == 2, t["ports"]
    q = L.telemetry("/mcbox/queues")
    assert sorted(q[k]["port"] for k in q) == [0, 1]


def test_second_port_answers_arp_with_its_own_mac():
    assert port1_mac() != L.server_mac()


def test_key_set_on_one_port_read_on_the_other():
    c = L.UdpClient()
    value = b"%08x" % random.getrandbits(32)
    assert c.request(b"set twoport 5 0 8\r\n" + value + b"\r\n", idle=0.0) == b"STORED\r\n"
    rid = 0x4242
    req = (Ether(dst=port1_mac(), src=my_mac(MC1)) / IP(src=L.CLIENT_IP, dst=L.SERVER_IP) /
           UDP(sport=40123, dport=L.MC_PORT) / Raw(struct.pack("!HHHH", rid, 0, 1, 0) + b"get twoport\r\n"))
    r = srp1(req, iface=MC1, timeout=2, filter="udp and src port %d" % L.MC_PORT)
    assert r is not None, "no reply through the second port"
    payload = bytes(r[UDP].payload)
    assert struct.unpack("!HHHH", payload[:8]) == (rid, 0, 1, 0)
    assert payload[8:] == b"VALUE twoport 5 8\r\n" + value + b"\r\nEND\r\n", payload
    q = L.telemetry("/mcbox/queues")
    by_port = {q[k]["port"]: q[k]["udp_requests"] for k in q}
    assert by_port[1] >= 1 and by_port[0] >= 1, by_port


if __name__ == "__main__":
    L.main(globals())

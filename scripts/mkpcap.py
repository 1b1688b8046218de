#!/usr/bin/python3
"""Write a pcap of memcached UDP requests for pktgen-dpdk, tcpreplay or a DPDK pcap vdev.

  scripts/mkpcap.py -o gets.pcap --count 100000 --keys 10000 --dist zipf --proto ascii \\
      --get-ratio 0.9 --dst-mac 02:00:00:00:00:01 --dst-ip 198.18.0.1 --dst-port 11211

Every frame is Ethernet/IPv4/UDP with valid checksums, an 8-byte memcached frame header
(request id = frame number, total 1) and one request: get or set (ASCII), mg or ms (meta), or
GETK or SET (binary). Keys are "key:<n>" padded with "x" to --key-size (as mcload and mcgen
make them); values are --value-size bytes.
Source ports vary over --sport-range so RSS spreads the frames over queues."""
import argparse
import bisect
import random
import struct
import sys

from scapy.all import IP, UDP, Ether, Raw, wrpcap  # noqa: E402


def zipf_sampler(n, s, rnd):
    weights = [1.0 / ((i + 1) ** s) for i in range(n)]
    total = sum(weights)
    cdf, acc = [], 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    perm = list(range(n))
    rnd.shuffle(perm)  # hot keys are not neighbours
    return lambda: perm[min(bisect.bisect_left(cdf, rnd.random()), n - 1)]


def key_bytes(i, size):
    k = b"key:%d" % i
    return (k + b"x" * size)[:max(size, len(k))]  # "x": with "0", keys 12 and 120 would be one


def request(proto, op, key, value):
    if proto == "ascii":
        if op == "get":
            return b"get " + key + b"\r\n"
        return b"set " + key + b" 0 0 %d\r\n" % len(value) + value + b"\r\n"
    if proto == "meta":
        if op == "get":
            return b"mg " + key + b" v f\r\n"
        return b"ms " + key + b" %d T0\r\n" % len(value) + value + b"\r\n"
    if op == "get":  # binary GETK
        return struct.pack("!BBHBBHIIQ", 0x80, 0x0C, len(key), 0, 0, 0, len(key), 0, 0) + key
    ext = struct.pack("!II", 0, 0)
    return struct.pack("!BBHBBHIIQ", 0x80, 0x01, len(key), 8, 0, 0, 8 + len(key) + len(value),
                       0, 0) + ext + key + value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--count", type=int, default=10000, help="frames (default 10000)")
    ap.add_argument("--keys", type=int, default=10000, help="key space (default 10000)")
    ap.add_argument("--dist", choices=["uniform", "zipf"], default="zipf")
    ap.add_argument("--zipf-s", type=float, default=0.99)
    ap.add_argument("--proto", choices=["ascii", "meta", "binary"], default="ascii")
    ap.add_argument("--get-ratio", type=float, default=0.9, help="share of gets (default 0.9)")
    ap.add_argument("--key-size", type=int, default=16)
    ap.add_argument("--value-size", type=int, default=32)
    ap.add_argument("--src-mac", default="02:00:00:00:00:02")
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--src-ip", default="198.18.0.2")
    ap.add_argument("--dst-ip", default="198.18.0.1")
    ap.add_argument("--dst-port", type=int, default=11211)
    ap.add_argument("--sport-range", default="40000-40999")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not 1 <= a.value_size <= 1300 or not 1 <= a.key_size <= 250:
        sys.exit("mkpcap: --value-size must be 1..1300 (one datagram) and --key-size 1..250")
    rnd = random.Random(a.seed)
    pick = zipf_sampler(a.keys, a.zipf_s, rnd) if a.dist == "zipf" else (lambda: rnd.randrange(a.keys))
    lo, hi = (int(x) for x in a.sport_range.split("-"))
    value = bytes(rnd.getrandbits(8) % 26 + 97 for _ in range(a.value_size))
    frames = []
    for n in range(a.count):
        op = "get" if rnd.random() < a.get_ratio else "set"
        body = struct.pack("!HHHH", n & 0xFFFF, 0, 1, 0) + request(a.proto, op, key_bytes(pick(), a.key_size), value)
        frames.append(Ether(src=a.src_mac, dst=a.dst_mac) / IP(src=a.src_ip, dst=a.dst_ip) /
                      UDP(sport=rnd.randint(lo, hi), dport=a.dst_port) / Raw(body))
    wrpcap(a.out, frames)
    print("mkpcap: %d frames (%s, %s keys over %d, %.0f%% gets) -> %s" %
          (a.count, a.proto, a.dist, a.keys, 100 * a.get_ratio, a.out))


if __name__ == "__main__":
    main()

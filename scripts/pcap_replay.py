#!/usr/bin/python3
"""Replay a mkpcap.py capture into the lab from the client namespace (as tcpreplay would) and
report how many frames mcbox answered, from its telemetry. Prints one JSON result line each
for bench.sh. Usage (inside the namespace): pcap_replay.py FRAMES PROTO"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import labtest as L  # noqa: E402
from scapy.all import conf, rdpcap, sendp  # noqa: E402

conf.verb = 0
count, proto = int(sys.argv[1]), sys.argv[2]
path = "/tmp/mcbox-replay-%d.pcap" % os.getpid()
subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "mkpcap.py"),
                "-o", path, "--count", str(count), "--proto", proto, "--dst-mac", L.server_mac(),
                "--src-mac", open("/sys/class/net/mcc0/address").read().strip()],
               check=True, stdout=subprocess.DEVNULL)
frames = rdpcap(path)
os.unlink(path)
before = L.telemetry()
t0 = time.time()
sendp(frames, iface=L.CLIENT_IF)
deadline = time.time() + 10
after = L.telemetry()
while after["udp_requests"] - before["udp_requests"] < count and time.time() < deadline:
    time.sleep(0.05)
    after = L.telemetry()
served = after["udp_requests"] - before["udp_requests"]
sent = after["tx_packets"] - before["tx_packets"]
for name, unit, value in (("pcap_replay_%s_answered" % proto, "ratio", sent / count),
                          ("pcap_replay_%s_served" % proto, "requests", served)):
    print(json.dumps({"name": name, "unit": unit, "value": value,
                      "params": {"frames": count, "proto": proto, "tool": "scapy sendp of a mkpcap.py pcap",
                                 "seconds": round(time.time() - t0, 2)}}))

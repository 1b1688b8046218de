#!/usr/bin/env bash
# The memcached part of make demo: real TCP clients (libmemcached's tools, pymemcache) write
# and read through the kernel path; UDP gets read the same store on the fast path; UDP writes
# are refused, as by default (the Facebook split: gets over UDP, the rest over TCP).
set -euo pipefail
cd "$(dirname "$0")/.."
NS=mcbox-client
BOX=198.18.0.1:11211
f=$(mktemp /tmp/mcbox-demo-XXXX.txt)
trap 'rm -f "$f"' EXIT
echo "hello from memccp over TCP, stored in mcbox" > "$f"
key=$(basename "$f")
run() { echo "\$ $*"; ip netns exec "$NS" "$@"; }
run memccp --servers=$BOX "$f"
run memccat --servers=$BOX "$key"
echo "\$ memcstat --servers=$BOX   (a few of its lines)"
ip netns exec "$NS" memcstat --servers=$BOX | grep -E 'curr_connections|total_connections|threads|cmd_get:|get_hits|curr_items' || true
echo "\$ python3: pymemcache over TCP, then raw UDP datagrams to the same box"
ip netns exec "$NS" /usr/bin/python3 - "$key" <<'PY'
import socket, struct, sys
from pymemcache.client.base import Client
c = Client(("198.18.0.1", 11211), connect_timeout=2, timeout=2)
c.set("demo", b"world")
c.set("counter", b"41")
print("  pymemcache: get demo ->", c.get("demo"), "; incr counter ->", c.incr("counter", 1))
c.close()
key = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for i, cmd in enumerate((b"get " + key + b"\r\n", b"mg demo v t f\r\n", b"get counter\r\n",
                         b"set demo 0 0 3\r\nudp\r\n")):
    s.sendto(struct.pack("!HHHH", i + 1, 0, 1, 0) + cmd, ("198.18.0.1", 11211))
    print("$ (UDP) " + cmd.split(b"\r\n")[0].decode())
    print(s.recv(65536)[8:].decode(errors="replace"), end="")
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.settimeout(2)
s6.sendto(struct.pack("!HHHH", 9, 0, 1, 0) + b"get demo\r\n", ("2001:2::1", 11211))
print("$ (UDP over IPv6, to 2001:2::1) get demo")
print(s6.recv(65536)[8:].decode(errors="replace"), end="")
PY

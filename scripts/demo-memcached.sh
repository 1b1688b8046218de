#!/usr/bin/env bash
# The memcached part of make demo: a real client stores over UDP, a UDP get reads it back.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=mcbox-client
f=$(mktemp /tmp/mcbox-demo-XXXX.txt)
trap 'rm -f "$f"' EXIT
echo "hello from memccp over UDP, stored in mcbox" > "$f"
key=$(basename "$f")
echo "\$ memccp --udp --servers=198.18.0.1:11211 $f"
ip netns exec "$NS" memccp --udp --servers=198.18.0.1:11211 "$f"
echo "\$ (UDP) get $key"
ip netns exec "$NS" /usr/bin/python3 - "$key" <<'PY'
import socket, struct, sys
key = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(struct.pack("!HHHH", 1, 0, 1, 0) + b"get " + key + b"\r\n", ("198.18.0.1", 11211))
print(s.recv(65536)[8:].decode(errors="replace"), end="")
for cmd in (b"set demo 0 0 5\r\nworld\r\n", b"mg demo v t f\r\n", b"set counter 0 0 2\r\n41\r\n", b"incr counter 1\r\n"):
    s.sendto(struct.pack("!HHHH", 2, 0, 1, 0) + cmd, ("198.18.0.1", 11211))
    print("$ (UDP) " + cmd.split(b"\r\n")[0].decode())
    print(s.recv(65536)[8:].decode(errors="replace"), end="")
PY

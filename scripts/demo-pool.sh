#!/usr/bin/env bash
# The pool part of make demo: three boxes (LAB_BOXES=3) behind twemproxy (Debian's nutcracker,
# ketama over md5), as a fleet runs them. Keys go in through the proxy over TCP; each is then
# read over UDP straight from the box that owns it. Leaves the three boxes running.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=mcbox-client
dir=$(mktemp -d /tmp/mcbox-demo-pool-XXXX)
cleanup() {
	if [ -f "$dir/nutcracker.pid" ]; then kill "$(cat "$dir/nutcracker.pid")" 2>/dev/null; fi
	rm -rf "$dir"
}
trap cleanup EXIT
LAB_BOXES=3 bash scripts/lab.sh up
free_port() { ip netns exec "$NS" /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
stats_port=$(free_port)
{
	echo "pool:"
	echo "  listen: 127.0.0.1:$port"
	echo "  hash: md5"
	echo "  distribution: ketama"
	echo "  auto_eject_hosts: false"
	echo "  timeout: 2000"
	echo "  servers:"
	sed 's/^/   - /; s/$/:1/' build/lab/boxes
} > "$dir/nutcracker.yml"
echo "\$ cat nutcracker.yml"
cat "$dir/nutcracker.yml"
ip netns exec "$NS" nutcracker -d -c "$dir/nutcracker.yml" -o "$dir/nutcracker.log" -p "$dir/nutcracker.pid" -s "$stats_port" -a 127.0.0.1
ip netns exec "$NS" /usr/bin/python3 - "$port" <<'PY'
import socket, struct, sys, time
from pymemcache.client.base import Client
port = int(sys.argv[1])
deadline = time.time() + 10
while True:  # bounded poll until nutcracker listens
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.05)
boxes = [l.strip().rsplit(":", 1)[0] for l in open("build/lab/boxes") if l.strip()]
c = Client(("127.0.0.1", port), connect_timeout=2, timeout=2, default_noreply=False)
keys = ["user:%d" % i for i in range(12)]
for k in keys:
    c.set(k, ("profile of " + k).encode())
print("$ pymemcache through nutcracker: set %d keys, get_many -> %d values" % (len(keys), len(c.get_many(keys))))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
print("$ each key over UDP from every box (the owner answers it):")
for k in keys:
    owners = []
    for ip in boxes:
        s.sendto(struct.pack("!HHHH", 7, 0, 1, 0) + b"get " + k.encode() + b"\r\n", (ip, 11211))
        if s.recv(65536)[8:].startswith(b"VALUE"):
            owners.append(ip)
    print("  %-8s on %s" % (k, ", ".join(owners)))
PY
echo "Three boxes are running: build/lab/boxes. Stop them with: make lab-down"

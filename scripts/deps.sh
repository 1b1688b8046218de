#!/usr/bin/env bash
# Install what mcbox needs to build, test and run, from Debian's archive.
# Idempotent: packages already installed are skipped; nothing else is touched.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  dpdk libdpdk-dev            # DPDK 22.11: EAL, ethdev, cfgfile, telemetry
  librte-net-af-packet23 librte-mempool-ring23 librte-net-ring23  # lab PMD, mempool driver, ring PMD
  librte-net-tap23 librte-net-virtio23  # the exception path to the kernel (TAP, virtio-user)
  librte-net-memif23          # the memif lab: mcbox and build/mcgen over shared memory
  libhugetlbfs-bin            # hugeadm
  libcmocka-dev               # unit tests
  memcached libmemcached-tools  # oracle and real clients (memccp, memcaslap, memccapable)
  libmemcached-dev            # the ketama cross-check against libmemcached's server choice
  nutcracker python3-pymemcache  # twemproxy in front of a pool; a Python TCP client
  python3 python3-scapy       # integration tests and pcap generation
  iproute2 iputils-ping ethtool procps
  clang libclang-rt-14-dev    # libFuzzer targets
  gnuplot-nox                 # make bench: the latency CDF picture
  systemd groff-base man-db   # the install check: systemd-analyze verify, the man page
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"

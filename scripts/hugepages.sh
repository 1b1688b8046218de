#!/usr/bin/env bash
# Reserve 2 MiB hugepages and mount hugetlbfs with hugeadm (libhugetlbfs-bin).
# Usage: scripts/hugepages.sh [MIB]   (default 512)
# Exit 0 when hugepages are usable; exit 3 (with a clear message) when they are not, so
# callers can fall back to --no-huge.
set -uo pipefail
want_mib=${1:-512}
pages=$(( (want_mib + 1) / 2 ))
mnt=/dev/hugepages

if [ "$(id -u)" -ne 0 ]; then
  echo "hugepages: not root: cannot reserve hugepages (run as root, or use --no-huge)" >&2
  exit 3
fi
if ! grep -q hugetlbfs /proc/filesystems; then
  echo "hugepages: kernel has no hugetlbfs; mcbox must run with --no-huge" >&2
  exit 3
fi
have=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
if [ "${have:-0}" -lt "$pages" ]; then
  hugeadm --pool-pages-min "2MB:${pages}" 2>/dev/null || echo "$pages" > /proc/sys/vm/nr_hugepages
fi
have=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
if [ "${have:-0}" -lt "$pages" ]; then
  echo "hugepages: asked for $pages x 2 MiB, kernel gave ${have:-0} (memory fragmented?); try again after 'echo 3 > /proc/sys/vm/drop_caches' or use --no-huge" >&2
  exit 3
fi
if ! mount | grep -q "on $mnt type hugetlbfs"; then
  mkdir -p "$mnt"
  hugeadm --create-mounts >/dev/null 2>&1 || true
  mount | grep -q "on $mnt type hugetlbfs" || mount -t hugetlbfs -o pagesize=2M nodev "$mnt"
fi
free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
echo "hugepages: $have x 2 MiB reserved ($free free), hugetlbfs at $mnt"

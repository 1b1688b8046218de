#!/usr/bin/env bash
# make install into a scratch DESTDIR and check what it put there: the files and their modes,
# the unit with systemd-analyze verify (which fails on a missing ExecStart binary, a bad
# directive value or a man page it cannot find), the man page with groff and against the
# options table, a reinstall that keeps edited configuration, and uninstall. Exits non-zero on
# the first failure. Needs build/mcbox (make install builds it if missing).
# Nothing here starts mcbox or any DPDK program (so no --no-pci is needed): files are compared
# and the unit is verified, never run.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
prefix=/usr/local
fail() { echo "install-check: FAILED: $*"; exit 1; }

make --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install"; }

unit=$dest$prefix/lib/systemd/system/mcbox.service
[ -x "$dest$prefix/bin/mcbox" ] || fail "no executable $prefix/bin/mcbox"
cmp -s build/mcbox "$dest$prefix/bin/mcbox" || fail "$prefix/bin/mcbox is not build/mcbox"
[ -f "$dest$prefix/share/man/man1/mcbox.1" ] || fail "no man page"
[ -f "$unit" ] || fail "no $prefix/lib/systemd/system/mcbox.service"
cmp -s config/mcbox.conf "$dest/etc/mcbox/mcbox.conf" || fail "/etc/mcbox/mcbox.conf is not the shipped config"
[ -f "$dest/etc/default/mcbox" ] || fail "no /etc/default/mcbox"
for f in "$unit" "$dest/etc/mcbox/mcbox.conf" "$dest/etc/default/mcbox"; do
	[ "$(stat -c %a "$f")" = 644 ] || fail "$f: mode $(stat -c %a "$f"), want 644"
done
! grep -n '@[A-Z]*@' "$unit" || fail "placeholders left in the unit"
grep -qx "ExecStart=$prefix/bin/mcbox \$MCBOX_EAL_ARGS -- -c /etc/mcbox/mcbox.conf \$MCBOX_ARGS" "$unit" ||
	fail "ExecStart does not run $prefix/bin/mcbox with the config and the EAL arguments"
# What the unit promises: hugepages, a restart policy, a stop within a timeout, a capability
# set, logs to the journal, and no device unless the operator names one.
for want in '^ExecStartPre=+/usr/bin/hugeadm --pool-pages-min 2MB:' '^Restart=on-failure$' \
	'^KillSignal=SIGTERM$' '^TimeoutStopSec=' '^CapabilityBoundingSet=CAP_' \
	'^StandardError=journal$' '^EnvironmentFile=-/etc/default/mcbox$' 'MCBOX_EAL_ARGS" ||'; do
	grep -q -- "$want" "$unit" || fail "the unit has no line matching: $want"
done
grep -qx 'MCBOX_EAL_ARGS=' "$dest/etc/default/mcbox" || fail "/etc/default/mcbox must name no device"

# systemd-analyze verify checks ExecStart's binary exists: verify a copy that runs the DESTDIR
# binary, with the DESTDIR man page on MANPATH (it runs man for Documentation=).
verify() {
	mkdir -p "$tmp/verify"
	sed "s|^ExecStart=$prefix/bin/mcbox|ExecStart=$dest$prefix/bin/mcbox|" "$1" >"$tmp/verify/mcbox.service"
	MANPATH="$dest$prefix/share/man:" systemd-analyze verify "$tmp/verify/mcbox.service" \
		>"$tmp/verify.log" 2>&1
	local rc=$?
	# Unknown keys are only warnings to verify: count them as failures here.
	[ $rc -eq 0 ] && ! grep -q 'mcbox.service' "$tmp/verify.log"
}
verify "$unit" || { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
# The check itself: a broken unit must fail it.
sed 's|^TimeoutStopSec=.*|TimeoutStopSec=soon|' "$unit" >"$tmp/broken.service"
! verify "$tmp/broken.service" || fail "a unit with a bad TimeoutStopSec passed verify"
sed 's|^Restart=on-failure|Restart=on-failure\nNoSuchKey=1|' "$unit" >"$tmp/broken.service"
! verify "$tmp/broken.service" || fail "a unit with an unknown key passed verify"

# The man page: groff has no warnings, and every option of the table is in it.
groff -man -ww -z "$dest$prefix/share/man/man1/mcbox.1" 2>"$tmp/groff.log" && [ ! -s "$tmp/groff.log" ] ||
	{ cat "$tmp/groff.log"; fail "groff warnings in mcbox.1"; }
opts=$(grep -oE '^[[:space:]]*X\("[a-z0-9-]+"' config/config.c | grep -oE '"[a-z0-9-]+"' | tr -d '"')
[ "$(echo "$opts" | wc -l)" -gt 20 ] || fail "could not read the options table"
for o in $opts; do
	grep -q -- "\\\\-\\\\-${o//-/\\\\-}" dist/mcbox.1 || fail "mcbox.1 does not describe --$o"
done

# A reinstall keeps the operator's configuration; uninstall removes the rest and keeps it.
echo '; edited' >>"$dest/etc/mcbox/mcbox.conf"
echo 'MCBOX_ARGS=--queues 2' >>"$dest/etc/default/mcbox"
make --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" >/dev/null 2>&1 || fail "reinstall"
grep -q '^; edited$' "$dest/etc/mcbox/mcbox.conf" || fail "reinstall overwrote mcbox.conf"
grep -q '^MCBOX_ARGS=--queues 2$' "$dest/etc/default/mcbox" || fail "reinstall overwrote /etc/default/mcbox"
make --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null 2>&1 || fail "uninstall"
[ ! -e "$dest$prefix/bin/mcbox" ] && [ ! -e "$unit" ] && [ ! -e "$dest$prefix/share/man/man1/mcbox.1" ] ||
	fail "uninstall left files in $prefix"
[ -f "$dest/etc/mcbox/mcbox.conf" ] || fail "uninstall removed the configuration"
echo "install-check: make install, the unit (systemd-analyze verify), man page and uninstall OK"

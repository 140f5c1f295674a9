#!/usr/bin/env bash
# The robot's unit file: hardened enough (systemd-analyze security exposure <= 2.5, a default
# service scores 9.6) and valid (systemd-analyze verify prints nothing). Run by `./dev test`,
# which installs the Debian package `systemd` (scripts/apt-test-packages.txt) first.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
UNIT=systemd/coachcam.service
MAX_EXPOSURE=2.5

fail() { echo "20-systemd: FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (apt-get install systemd)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Exposure. --offline reads only the file; --threshold (0-100 scale) also fails the command.
systemd-analyze security --offline=true --threshold=25 --no-pager "$UNIT" >"$tmp/security" 2>&1 \
    || { cat "$tmp/security" >&2; fail "systemd-analyze security failed or exposure above $MAX_EXPOSURE"; }
if grep -q "^$UNIT:" "$tmp/security"; then
    grep "^$UNIT:" "$tmp/security" >&2
    fail "systemd-analyze security warned about $UNIT"
fi
exposure=$(sed -n 's/.*Overall exposure level for coachcam.service: \([0-9.]*\).*/\1/p' "$tmp/security")
[ -n "$exposure" ] || { cat "$tmp/security" >&2; fail "no exposure level in the output"; }
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' \
    || { grep '✗' "$tmp/security" >&2; fail "exposure $exposure > $MAX_EXPOSURE"; }

# 2. verify. It checks that ExecStart's binary exists and is executable, and on this machine
# /opt/coachcam/venv does not exist (it is made on the robot by `coachcam install`). So verify a
# copy whose ExecStart points at the same entry point in the dev venv ($VENV/bin/coachcam):
# only that path differs, every other line is checked as shipped. verify exits 0 on unknown
# keys and bad values (it only warns), so any output at all fails the check.
[ -x "$VENV/bin/coachcam" ] || fail "$VENV/bin/coachcam missing (run ./dev setup)"
grep -q '^ExecStart=/opt/coachcam/venv/bin/coachcam ' "$UNIT" || fail "unexpected ExecStart in $UNIT"
sed "s#^ExecStart=/opt/coachcam/venv/bin/coachcam #ExecStart=$(realpath "$VENV")/bin/coachcam #" \
    "$UNIT" >"$tmp/coachcam.service"
if ! systemd-analyze verify "$tmp/coachcam.service" >"$tmp/verify" 2>&1 || [ -s "$tmp/verify" ]; then
    sed "s#$tmp/##" "$tmp/verify" >&2
    fail "systemd-analyze verify is not clean"
fi
echo "20-systemd: OK: exposure $exposure (max $MAX_EXPOSURE), verify clean"

#!/usr/bin/env bash
# test_systemd_units.sh: the systemd units of deploy/systemd/ as systemd reads
# them, and the exit codes they rely on.
#
#   test_systemd_units.sh UNITDIR SYSUSERS WORKER TRAINER
#
# UNITDIR holds the units generated for this build tree (deploy/CMakeLists.txt):
# `systemd-analyze verify` must accept them without a single warning (it
# only warns about an unknown key or a bad value, and fails on a missing
# executable). SYSUSERS must create the catwire user in an empty root.
# RestartPreventExitStatus=2 assumes that both daemons exit 2, not 1, on a
# bad configuration (so systemd does not restart them in a loop), and that
# --check-config (ExecStartPre) accepts a good one: both are run here.
# Skips (77) when systemd-analyze is not installed (Debian package systemd).
set -u
unitdir=$1 sysusers=$(realpath "$2") worker=$3 trainer=$4
fail=0
check() {  # check WHAT CONDITION...
    local what=$1
    shift
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

if ! command -v systemd-analyze >/dev/null; then
    echo "skipped: systemd-analyze is not installed (Debian package systemd)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$(cd "$unitdir" && systemd-analyze verify ./catwire-worker@news.service ./catwire-trainer.service 2>&1)
rc=$?
[[ -n $out ]] && printf '%s\n' "$out"
check "systemd-analyze verify exits 0" test "$rc" -eq 0
check "systemd-analyze verify prints no warning" test -z "$out"

if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$tmp/root/etc"
    systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>&1
    check "sysusers.d file creates the catwire user with home /var/lib/catwire" \
        grep -q '^catwire:x:[0-9]*:[0-9]*:[^:]*:/var/lib/catwire:' "$tmp/root/etc/passwd"
else
    echo "note: systemd-sysusers not installed; the sysusers.d file is not checked"
fi

# Exit codes the units' Restart policy depends on.
printf 'brokers = "127.0.0.1:1";\nno_such_key = 1;\n' >"$tmp/bad.conf"
"$worker" --config "$tmp/bad.conf" --check-config >/dev/null 2>&1
check "catwire-worker exits 2 on an unknown key (--check-config)" test $? -eq 2
"$worker" --config "$tmp/bad.conf" >/dev/null 2>&1
check "catwire-worker exits 2 on an unknown key (run)" test $? -eq 2
"$trainer" run --config "$tmp/bad.conf" --check-config >/dev/null 2>&1
check "catwire-trainer run exits 2 on an unknown key (--check-config)" test $? -eq 2
"$trainer" run --config "$tmp/bad.conf" >/dev/null 2>&1
check "catwire-trainer run exits 2 on an unknown key (run)" test $? -eq 2
printf 'brokers = "127.0.0.1:1";\n' >"$tmp/good.conf"
"$worker" --config "$tmp/good.conf" --check-config >/dev/null 2>&1
check "catwire-worker --check-config exits 0 on a valid file" test $? -eq 0

exit $fail

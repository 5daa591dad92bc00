#!/usr/bin/env bash
# Install the Debian packages for a one-node SLURM cluster with accounting
# (slurmctld, slurmd, slurmdbd, client tools, munge, MariaDB).
#
# Installs only: no daemon is left running afterwards.  start.sh starts
# everything by hand (this machine has no systemd) with config and state in
# its own folder.  Idempotent: returns at once when everything is installed.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurmdbd slurm-client munge mariadb-server rsync)

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm/local/install.sh: all packages already installed (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm/local/install.sh: must run as root (apt-get install)" >&2
    exit 1
fi

# Debian maintainer scripts start services through invoke-rc.d, which asks
# /usr/sbin/policy-rc.d first; exit code 101 means "action forbidden".  Put
# such a policy in place for the install unless one that denies is already
# there (Docker-style images ship one), and restore whatever was there.
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
OUR_POLICY=0
restore_policy() {
    if [ "$OUR_POLICY" = 1 ]; then
        rm -f "$POLICY"
        if [ -n "$POLICY_BACKUP" ]; then mv -f "$POLICY_BACKUP" "$POLICY"; fi
    fi
}
if ! { [ -x "$POLICY" ] && grep -q 'exit 101' "$POLICY"; }; then
    if [ -e "$POLICY" ]; then
        POLICY_BACKUP="$(mktemp "${POLICY}.ovvss-backup.XXXXXX")"
        mv -f "$POLICY" "$POLICY_BACKUP"
    fi
    OUR_POLICY=1
    printf '#!/bin/sh\n# temporary, slurm/local/install.sh: no service starts during install\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
fi
trap restore_policy EXIT

# Processes of these daemons that exist before the install are none of our
# business; only ones that appear during the install get stopped below.
daemon_pids() { pgrep -x 'munged|slurmctld|slurmd|slurmdbd|mariadbd|mysqld|mysqld_safe|mariadbd-safe' 2>/dev/null | sort || true; }
before="$(daemon_pids)"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)
echo "slurm/local/install.sh: installing ${missing[*]} ..."
# The package lists on the machine may be stale (404 on a package file):
# refresh them once and retry.
if ! apt-get install "${APT_OPTS[@]}" "${PACKAGES[@]}" >/tmp/ovvss-slurm-install.log 2>&1; then
    echo "slurm/local/install.sh: first attempt failed, running apt-get update and retrying"
    apt-get update -q >>/tmp/ovvss-slurm-install.log 2>&1
    if ! apt-get install "${APT_OPTS[@]}" "${PACKAGES[@]}" >>/tmp/ovvss-slurm-install.log 2>&1; then
        tail -n 30 /tmp/ovvss-slurm-install.log >&2
        echo "slurm/local/install.sh: apt-get install failed (full log: /tmp/ovvss-slurm-install.log)" >&2
        exit 1
    fi
fi

# Belt and braces: if a maintainer script managed to start a daemon anyway,
# stop exactly those new processes (by PID, never by name).
after="$(daemon_pids)"
new="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep -v '^$' || true)"
if [ -n "$new" ]; then
    echo "slurm/local/install.sh: stopping daemons started by the install: $(echo $new)"
    # shellcheck disable=SC2086
    kill $new 2>/dev/null || true
    sleep 3
    # shellcheck disable=SC2086
    kill -9 $new 2>/dev/null || true
fi

for p in "${PACKAGES[@]}"; do
    is_installed "$p" || { echo "slurm/local/install.sh: $p is not installed after apt-get" >&2; exit 1; }
done
echo "slurm/local/install.sh: installed: ${PACKAGES[*]} ($(dpkg-query -W -f='${Version}' slurmctld))"

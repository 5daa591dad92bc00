#!/usr/bin/env bash
# Stop the local SLURM cluster started by start.sh: only the daemons whose
# PIDs start.sh recorded in $STATE/pids (never anything found by name), in
# reverse start order, SIGTERM first and SIGKILL after a timeout.
#
# Jobs still running keep their slurmstepd processes (as on a real cluster
# when slurmd restarts; slurmd picks them up again on the next start).  Pass
# --cancel-jobs to scancel all jobs first, so that nothing is left behind.
#
# Leaves the state folder (munge key, MariaDB data, job accounting, logs) and
# the /etc/slurm/slurm.conf copy in place, so start.sh can resume from them.
# Idempotent: with nothing running it only removes stale PID files.
#
# Env: OVVSS_SLURM_DIR       state folder                   (default /tmp/ovvss-slurm)
#      OVVSS_SLURM_STOP_WAIT seconds before SIGKILL, each   (default 30)
set -euo pipefail

STATE="${OVVSS_SLURM_DIR:-/tmp/ovvss-slurm}"
case "$STATE" in /*) ;; *) STATE="$(pwd)/$STATE" ;; esac
PIDS="$STATE/pids"
WAIT="${OVVSS_SLURM_STOP_WAIT:-30}"
CANCEL_JOBS=0
for arg in "$@"; do
    case "$arg" in
        --cancel-jobs) CANCEL_JOBS=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "slurm/local/stop.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

log() { echo "slurm/local/stop.sh: $*"; }

# Reverse of start.sh's order.
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)

pid_of() { local f="$PIDS/$1.pid"; [ -r "$f" ] && tr -dc '0-9' <"$f" || true; }
# Ours only while the PID still carries the daemon's name (no recycled PIDs).
# A zombie (exited, not yet reaped by its parent) counts as gone.
is_ours() {
    [ -n "$2" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null || true)" = "$1" ] || return 1
    local stat; stat="$(cat "/proc/$2/stat" 2>/dev/null || true)"
    [ -n "$stat" ] && [ "$(awk '{print $1}' <<<"${stat##*) }")" != Z ]
}

if [ ! -d "$PIDS" ]; then
    log "nothing to stop (no $PIDS)"
    exit 0
fi

if [ "$CANCEL_JOBS" = 1 ] && is_ours slurmctld "$(pid_of slurmctld)"; then
    export SLURM_CONF="$STATE/etc/slurm.conf"
    jobs="$(squeue -h -o '%i' 2>/dev/null | tr '\n' ' ' || true)"
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        scancel $jobs || true
        # give slurmd the KillWait to end the job steps
        for _ in $(seq 40); do
            [ -z "$(squeue -h -o '%i' 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

stopped=()
for d in "${DAEMONS[@]}"; do
    pid="$(pid_of "$d")"
    if ! is_ours "$d" "$pid"; then
        rm -f "$PIDS/$d.pid"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + WAIT))
    while is_ours "$d" "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if is_ours "$d" "$pid"; then
        log "$d (PID $pid) still running after ${WAIT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do is_ours "$d" "$pid" || break; sleep 0.1; done
    fi
    if is_ours "$d" "$pid"; then
        log "ERROR: $d (PID $pid) did not exit" >&2
        exit 1
    fi
    rm -f "$PIDS/$d.pid"
    stopped+=("$d($pid)")
done

if [ ${#stopped[@]} -eq 0 ]; then
    log "nothing was running (state folder $STATE)"
else
    log "stopped ${stopped[*]}; state kept in $STATE"
fi

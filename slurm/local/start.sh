#!/usr/bin/env bash
# Start a one-node SLURM cluster with accounting on this machine, by hand
# (no systemd): munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd.
#
# All config, keys, databases, spool/state dirs, logs and PID files live in
# one state folder ($OVVSS_SLURM_DIR, default /tmp/ovvss-slurm).  Outside it
# go only the munge socket (/run/munge/munge.socket.2, see MUNGE_SOCKET) and
# /etc/slurm/slurm.conf (a copy of ours), because plain `sbatch`/`squeue`/
# `sacct` (and submitit) must find the config without SLURM_CONF set.  stop.sh leaves that copy in place; the next start.sh
# overwrites it.  A pre-existing /etc/slurm/slurm.conf that is not ours is
# moved aside once, to /etc/slurm/slurm.conf.ovvss-backup.
#
# Loopback only: munged listens on a unix socket, mariadbd on 127.0.0.1, and
# slurmdbd, slurmctld and slurmd on the address the host name resolves to,
# which must be a loopback one (see "loopback only" below).
#
# Idempotent: if all daemons recorded in $STATE/pids are alive, says so and
# exits 0; if only some are, stops those (stop.sh) and starts afresh.
#
# Env: OVVSS_SLURM_DIR      state folder            (default /tmp/ovvss-slurm)
#      OVVSS_SLURM_DB_PORT  MariaDB TCP port        (default 3306)
#      OVVSS_SLURM_TIMEOUT  seconds to wait for up  (default 60)
#      OVVSS_SLURM_PRIVATE_HOSTNAME  auto|1|0: UTS namespace for the SLURM daemons (default auto; see below)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${OVVSS_SLURM_DIR:-/tmp/ovvss-slurm}"
DB_PORT="${OVVSS_SLURM_DB_PORT:-3306}"
TIMEOUT="${OVVSS_SLURM_TIMEOUT:-60}"
CLUSTER=ovvss-local
PARTITION=debug
NODE=localhost
SLURMCTLD_PORT=6817
SLURMD_PORT=6818
SLURMDBD_PORT=6819
ETC_SLURM_CONF=/etc/slurm/slurm.conf
MARKER="# managed by ovvss slurm/local/start.sh"

log() { echo "slurm/local/start.sh: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root" >&2
    exit 1
fi
for cmd in munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sacctmgr sinfo sacct; do
    command -v "$cmd" >/dev/null || { log "$cmd not found; run slurm/local/install.sh first" >&2; exit 1; }
done

# The state folder must be an absolute path: it goes into config files.
case "$STATE" in /*) ;; *) STATE="$(pwd)/$STATE" ;; esac
PIDS="$STATE/pids"; LOGS="$STATE/log"; ETC="$STATE/etc"; RUN="$STATE/run"
MUNGE_DIR="$STATE/munge"; DB_DIR="$STATE/mariadb"
# munged listens on the standard socket: SLURM 22.05 client commands talking
# to slurmdbd (sacctmgr, sacct) ignore AuthInfo=socket=... and always use it.
MUNGE_SOCKET=/run/munge/munge.socket.2
DB_SOCKET="$DB_DIR/mariadb.sock"

# Order matters: started in this order, stopped in reverse by stop.sh.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

# A PID counts as ours only if the process still has the expected name, so a
# recycled PID is never mistaken for (or killed as) one of our daemons.
pid_of() { local f="$PIDS/$1.pid"; [ -r "$f" ] && tr -dc '0-9' <"$f" || true; }
alive() {
    local pid stat; pid="$(pid_of "$1")"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$1" ] || return 1
    # a zombie (exited, not yet reaped) is not alive
    stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
    [ -n "$stat" ] && [ "$(awk '{print $1}' <<<"${stat##*) }")" != Z ]
}

# ---- already running? -------------------------------------------------------
n_alive=0
for d in "${DAEMONS[@]}"; do alive "$d" && n_alive=$((n_alive + 1)); done
if [ "$n_alive" -eq "${#DAEMONS[@]}" ]; then
    log "already running (state folder $STATE, PIDs: $(for d in "${DAEMONS[@]}"; do printf '%s=%s ' "$d" "$(pid_of "$d")"; done))"
    exit 0
elif [ "$n_alive" -gt 0 ]; then
    log "only $n_alive of ${#DAEMONS[@]} daemons alive; stopping them and starting afresh"
    OVVSS_SLURM_DIR="$STATE" "$HERE/stop.sh"
fi

# ---- loopback only ------------------------------------------------------------
# SLURM 22.05 daemons listen on INADDR_ANY (every interface) by default, and
# no option names the address to listen on: DbdAddr, NodeAddr and
# SlurmctldHost's (addr) only say where the others *connect* to.
# CommunicationParameters=NoInAddrAny (slurmdbd, slurmd, and slurmstepd/srun)
# and NoCtldInAddrAny (slurmctld) make them bind instead to the first IPv4
# address that their gethostname() resolves to (slurm_setup_addr()).  If
# this host's name resolves to a loopback address (127.x, as /etc/hosts
# usually says), that is enough.  If not (e.g. a container whose name maps to
# its eth0 address), the three SLURM daemons run in a UTS namespace of their
# own whose host name is "localhost" (unshare --uts): same network, same
# PIDs, only the name they see differs; jobs (children of slurmd) see it too.
# OVVSS_SLURM_PRIVATE_HOSTNAME=1 forces that namespace, =0 forbids it.
# $ADDR is the loopback address they bind; the configs name it as the one to
# connect to (a socket bound to 127.0.1.1 does not answer on 127.0.0.1).
resolve4() { getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 {print $1}' || true; }
HOST_NAME="$(uname -n)"
HOST_ADDR="$(resolve4 "$HOST_NAME")"
PRIVATE_HOSTNAME="${OVVSS_SLURM_PRIVATE_HOSTNAME:-auto}"
if [ "$PRIVATE_HOSTNAME" = auto ]; then
    case "$HOST_ADDR" in 127.*) PRIVATE_HOSTNAME=0 ;; *) PRIVATE_HOSTNAME=1 ;; esac
fi
why="host name $HOST_NAME resolves to '${HOST_ADDR:-nothing}', not to a loopback address"
if [ "$PRIVATE_HOSTNAME" = 1 ]; then
    command -v unshare >/dev/null || { log "unshare (util-linux) not found; needed because $why" >&2; exit 1; }
    unshare --uts sh -c 'echo localhost >/proc/sys/kernel/hostname' 2>/dev/null \
        || { log "cannot make a UTS namespace (unshare --uts), needed because $why; map $HOST_NAME to 127.0.1.1 in /etc/hosts" >&2; exit 1; }
    ADDR="$(resolve4 localhost)"
    case "$ADDR" in 127.*) ;; *) log "localhost resolves to '${ADDR:-nothing}', not to a loopback address; fix /etc/hosts" >&2; exit 1 ;; esac
    BIND_DESC="$ADDR (host name localhost in a UTS namespace of their own, since $why)"
    # prefix that runs a command (exec'd: same PID) with host name localhost
    AS_LOCALHOST=(unshare --uts sh -c 'echo localhost >/proc/sys/kernel/hostname && exec "$@"' sh)
else
    case "$HOST_ADDR" in 127.*) ;; *) log "OVVSS_SLURM_PRIVATE_HOSTNAME=0 but $why: the daemons would listen on it" >&2; exit 1 ;; esac
    ADDR="$HOST_ADDR"
    BIND_DESC="$ADDR (what host name $HOST_NAME resolves to)"
    AS_LOCALHOST=()
fi

# Fail early with a clear message when another program holds one of our ports
# (one listening on every interface answers on $ADDR too).
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for hp in "127.0.0.1 $DB_PORT" "$ADDR $SLURMDBD_PORT" "$ADDR $SLURMCTLD_PORT" "$ADDR $SLURMD_PORT"; do
    # shellcheck disable=SC2086
    if port_busy $hp; then
        log "port ${hp#* } on ${hp% *} is already in use by another program (not started by us)." >&2
        log "stop it, or for MariaDB pick another port with OVVSS_SLURM_DB_PORT" >&2
        exit 1
    fi
done

fail() {  # fail MESSAGE LOGFILE...
    local msg="$1"; shift
    echo "slurm/local/start.sh: ERROR: $msg" >&2
    for f in "$@"; do
        [ -e "$f" ] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 25 "$f" >&2
    done
    echo "slurm/local/start.sh: daemons started so far keep running; stop them with $HERE/stop.sh" >&2
    exit 1
}

# ---- folders ----------------------------------------------------------------
mkdir -p "$STATE" "$PIDS" "$LOGS" "$ETC" "$RUN" "$MUNGE_DIR" "$DB_DIR" \
         "$STATE/slurmctld" "$STATE/slurmd"
chmod 755 "$STATE"
chmod 700 "$ETC"          # holds the DB password and slurmdbd.conf

# ---- munge --------------------------------------------------------------------
# munged runs as user munge and refuses a key/socket dir that others can
# write to or a key that others can read.
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    mungekey --create --keyfile="$MUNGE_DIR/munge.key"
fi
chown -R munge:munge "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR"
chmod 600 "$MUNGE_DIR/munge.key"
if [ -S "$MUNGE_SOCKET" ] && munge -n -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
    log "a munged not started by us already answers on $MUNGE_SOCKET; stop it first" >&2
    exit 1
fi
mkdir -p "$(dirname "$MUNGE_SOCKET")"
chown munge:munge "$(dirname "$MUNGE_SOCKET")"
chmod 755 "$(dirname "$MUNGE_SOCKET")"
rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"

# ---- MariaDB config -----------------------------------------------------------
cat >"$ETC/my.cnf" <<EOF
$MARKER
[client]
socket = $DB_SOCKET
port = $DB_PORT

[mysqld]
user = root
datadir = $DB_DIR/data
socket = $DB_SOCKET
port = $DB_PORT
bind-address = 127.0.0.1
skip-name-resolve
pid-file = $RUN/mariadbd.pid
log-error = $LOGS/mariadbd.log
# small footprint (slurmdbd logs "Database settings not recommended values:
# innodb_buffer_pool_size" at start: harmless for a test cluster's few jobs);
# slurmdbd asks for a long lock wait timeout
innodb_buffer_pool_size = 256M
innodb_lock_wait_timeout = 900
max_allowed_packet = 16M
# no native AIO: avoids io_uring/libaio trouble in sandboxes
innodb_use_native_aio = 0
EOF

if [ ! -d "$DB_DIR/data/mysql" ]; then
    log "initialising MariaDB data dir $DB_DIR/data"
    rm -rf "$DB_DIR/data"
    mariadb-install-db --defaults-file="$ETC/my.cnf" --auth-root-authentication-method=socket \
        --skip-test-db >"$LOGS/mariadb-install-db.log" 2>&1 \
        || fail "mariadb-install-db failed" "$LOGS/mariadb-install-db.log"
fi

# Password for slurmdbd's DB user, made once and kept in the state folder.
if [ ! -s "$ETC/db-password" ]; then
    (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -dc '0-9a-f' >"$ETC/db-password")
fi
DB_PASS="$(cat "$ETC/db-password")"

# ---- slurmdbd.conf ------------------------------------------------------------
# slurmdbd reads slurmdbd.conf from the folder of $SLURM_CONF.
(umask 077; cat >"$ETC/slurmdbd.conf" <<EOF
$MARKER
AuthType=auth/munge
# listen on what the host name resolves to (loopback), not on every interface
CommunicationParameters=NoInAddrAny
DbdHost=localhost
DbdAddr=$ADDR
DbdPort=$SLURMDBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
)
chown root:root "$ETC/slurmdbd.conf"
chmod 600 "$ETC/slurmdbd.conf"

# ---- slurm.conf ---------------------------------------------------------------
# Node size from the hardware as slurmd sees it; memory a bit below the real
# total, since slurmd drains a node that has less memory than configured.
HW="$(slurmd -C | head -n 1)"
hw() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS="$(hw CPUs)"; SOCKETS="$(hw SocketsPerBoard)"; CORES="$(hw CoresPerSocket)"; THREADS="$(hw ThreadsPerCore)"
MEM="$(( $(hw RealMemory) * 95 / 100 ))"

cat >"$ETC/slurm.conf" <<EOF
$MARKER (state folder $STATE)
ClusterName=$CLUSTER
SlurmctldHost=localhost($ADDR)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# slurmctld, slurmd (and srun) listen on what the host name resolves to
# (loopback: see start.sh), not on every interface (INADDR_ANY)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
# a requeued job may start again only after the step credential lifetime
# (default 120 s); 10 s keeps requeue/preemption tests quick (minimum is 5)
AuthInfo=cred_expire=10

StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# no cgroups on this machine
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# no mail on this machine (else slurmctld logs "Configured MailProg is invalid")
MailProg=/bin/true
SelectType=select/cons_tres
# cores only: memory is not a consumable, so jobs without --mem don't take the whole node
SelectTypeParameters=CR_Core

# accounting through slurmdbd, so sacct reports exact job states
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$ADDR
AccountingStoragePort=$SLURMDBD_PORT
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none

# fast turnaround for tests: schedule every second, purge finished jobs
# from slurmctld memory quickly (sacct still has them), quick scancel.
# Dependencies keep SLURM's default: a job whose dependency can never be met
# stays PENDING (Reason=DependencyNeverSatisfied) until cancelled; add
# DependencyParameters=kill_invalid_depend to have it cancelled instead
# (22.05 silently ignores that key inside SchedulerParameters).
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MinJobAge=10
KillWait=2
InactiveLimit=0
Waittime=0
ReturnToService=2
JobRequeue=1
MaxArraySize=10001
MaxJobCount=100000
SlurmctldTimeout=30
SlurmdTimeout=60

NodeName=$NODE NodeAddr=$ADDR CPUs=$CPUS Sockets=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$ETC/slurm.conf"

# Client commands read /etc/slurm/slurm.conf: install our copy there.
mkdir -p "$(dirname "$ETC_SLURM_CONF")"
if [ -e "$ETC_SLURM_CONF" ] && ! grep -qF "$MARKER" "$ETC_SLURM_CONF" && [ ! -e "$ETC_SLURM_CONF.ovvss-backup" ]; then
    log "moving existing $ETC_SLURM_CONF to $ETC_SLURM_CONF.ovvss-backup"
    mv "$ETC_SLURM_CONF" "$ETC_SLURM_CONF.ovvss-backup"
fi
cp "$ETC/slurm.conf" "$ETC_SLURM_CONF.tmp.$$"
mv -f "$ETC_SLURM_CONF.tmp.$$" "$ETC_SLURM_CONF"
echo "$ETC_SLURM_CONF" >"$STATE/installed-config"

export SLURM_CONF="$ETC/slurm.conf"

# ---- launching ----------------------------------------------------------------
# Each daemon runs in the foreground (no self-daemonizing, so $! is its real
# PID) in a session of its own (setsid: detached from our terminal and process
# group), with stdout/stderr in $LOGS/<name>.out.
launch() {  # launch NAME CMD...
    local name="$1"; shift
    setsid "$@" </dev/null >>"$LOGS/$name.out" 2>&1 &
    echo "$!" >"$PIDS/$name.pid"
    # setsid/setpriv exec the daemon; wait until the PID carries its name.
    local i
    for i in $(seq 50); do
        alive "$name" && return 0
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    fail "$name did not start" "$LOGS/$name.out" "$LOGS/$name.log"
}

wait_for() {  # wait_for WHAT NAME CHECK-CMD...: poll CHECK until it succeeds
    local what="$1" name="$2"; shift 2
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || fail "$name exited while waiting for $what" "$LOGS/$name.out" "$LOGS/$name.log"
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what" "$LOGS/$name.out" "$LOGS/$name.log"
        sleep 0.5
    done
}

log "starting munged"
launch munged setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$LOGS/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
wait_for "the munge socket" munged test -S "$MUNGE_SOCKET"
wait_for "munge to work" munged sh -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'"

log "starting mariadbd on 127.0.0.1:$DB_PORT"
launch mariadbd mariadbd --defaults-file="$ETC/my.cnf"
wait_for "MariaDB to answer" mariadbd mariadb --defaults-file="$ETC/my.cnf" -u root -e 'SELECT 1'
# slurmdbd's DB user; password reset each start so it always matches the file.
mariadb --defaults-file="$ETC/my.cnf" -u root <<EOF || fail "could not create the slurm DB user" "$LOGS/mariadbd.log"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF

log "starting slurmdbd (slurmdbd, slurmctld and slurmd listen on $BIND_DESC)"
launch slurmdbd "${AS_LOCALHOST[@]}" slurmdbd -D
wait_for "slurmdbd to answer" slurmdbd sacctmgr -n -P list cluster
# Register the cluster once (slurmctld would too, but then the first
# minutes of accounting could race with it).  Associations are not
# enforced, so no account/user setup is needed.
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster failed" "$LOGS/slurmdbd.log"
fi

log "starting slurmctld"
launch slurmctld "${AS_LOCALHOST[@]}" slurmctld -D -f "$ETC/slurm.conf"
wait_for "slurmctld to answer" slurmctld scontrol ping

log "starting slurmd"
launch slurmd "${AS_LOCALHOST[@]}" slurmd -D -f "$ETC/slurm.conf" -N "$NODE"

node_idle() {
    local st; st="$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1)"
    case "$st" in idle|mixed|allocated|completing) return 0 ;; esac
    return 1
}
deadline=$((SECONDS + TIMEOUT))
until node_idle; do
    alive slurmd || fail "slurmd exited" "$LOGS/slurmd.out" "$LOGS/slurmd.log"
    [ "$SECONDS" -lt "$deadline" ] || fail "node $NODE not idle after ${TIMEOUT}s: $(sinfo -h -N -n "$NODE" -o '%T %E' 2>&1)" \
        "$LOGS/slurmd.log" "$LOGS/slurmctld.log"
    sleep 0.5
done
wait_for "sacct to answer" slurmdbd sacct -n -X -S now-1minutes

log "local SLURM cluster up: partition $PARTITION, node $NODE ($CPUS CPUs, ${MEM} MB), slurmctld/slurmd/slurmdbd on $ADDR:$SLURMCTLD_PORT/$SLURMD_PORT/$SLURMDBD_PORT, accounting via slurmdbd + MariaDB on 127.0.0.1:$DB_PORT, state in $STATE; stop with slurm/local/stop.sh"

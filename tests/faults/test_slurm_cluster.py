"""The local SLURM test cluster of slurm/local/ must not be reachable from other hosts: every TCP socket
its daemons listen on binds a loopback address. Skipped when no cluster answers here, unless
BENCHMARK_REQUIRE_SLURM=1 (as tests/test_slurm.py decides)."""

from __future__ import annotations

import ipaddress
import os
import pathlib
import shutil
import subprocess

import pytest

STATE = pathlib.Path(os.environ.get("OVVSS_SLURM_DIR", "/tmp/ovvss-slurm"))
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")  # slurm/local/start.sh's order
LISTENERS = ("mariadbd", "slurmdbd", "slurmctld", "slurmd")  # each must listen on at least one TCP port
TCP_LISTEN = "0A"


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], check=False, capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in done.stdout.split())


def skip_or_fail(message: str):
    if os.environ.get("BENCHMARK_REQUIRE_SLURM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def daemon_pids() -> dict[str, int]:
    """The live daemons recorded in $STATE/pids, each only while its PID still carries its name."""
    pids = {}
    for name in DAEMONS:
        try:
            pid = int((STATE / "pids" / f"{name}.pid").read_text().strip())
            if (pathlib.Path("/proc") / str(pid) / "comm").read_text().strip() == name:
                pids[name] = pid
        except (OSError, ValueError):
            pass
    return pids


def address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def listening_sockets(pid: int) -> dict[int, tuple[str, int]]:
    """inode -> (address, port) of the listening TCP sockets in the network namespace of `pid`."""
    found = {}
    for table in ("tcp", "tcp6"):
        path = pathlib.Path("/proc") / str(pid) / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            host, port = fields[1].rsplit(":", 1)
            found[int(fields[9])] = (address(host), int(port, 16))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in (pathlib.Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def is_loopback(ip) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.mark.fault("local SLURM test cluster exposed to other hosts")
def test_the_local_slurm_cluster_listens_on_loopback_only():
    if not cluster_is_up():
        skip_or_fail("no SLURM cluster answers here; start one with slurm/local/install.sh && slurm/local/start.sh")
    pids = daemon_pids()
    if not pids:
        skip_or_fail(f"the SLURM cluster that answers here was not started by slurm/local/start.sh "
                     f"(no live daemon in {STATE / 'pids'}; set OVVSS_SLURM_DIR to its state folder)")
    assert set(pids) == set(DAEMONS), f"only {sorted(pids)} of {DAEMONS} are running (PIDs in {STATE / 'pids'})"

    listening = {}  # daemon -> [(address, port)]
    for name, pid in pids.items():
        sockets = listening_sockets(pid)
        listening[name] = sorted({sockets[i] for i in socket_inodes(pid) if i in sockets}, key=str)
    exposed = {name: [f"{ip}:{port}" for ip, port in bound if not is_loopback(ip)]
               for name, bound in listening.items()}
    exposed = {name: bound for name, bound in exposed.items() if bound}
    assert not exposed, f"daemons of the local SLURM cluster listen on non-loopback addresses: {exposed}"
    silent = [name for name in LISTENERS if not listening[name]]
    assert not silent, f"no listening TCP socket found for {silent} (all found: {listening})"

"""One driver per output folder.

`run` and `train` hold an OS file lock on `FOLDER/.driver.lock` while they drive the folder's work, so a
second driver started on the same folder (another terminal, a rerun while a SLURM driver still runs)
refuses at once, naming the holder, or waits for it (`--wait-lock`). The lock is `fcntl.lockf`, a POSIX
record lock: the kernel drops it when its holder exits however it exits (a kill, a crash), so a stale
lock never needs removing by hand; on a shared file system it holds across hosts where the file system
honours POSIX locks (NFSv4, NFSv3 with lockd, Lustre mounted with `flock`, GPFS, BeeGFS). The jobs a
driver starts hold no lock: they are its own work.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Iterator

LOCK_FILE = ".driver.lock"
POLL_SECONDS = 2.0


class FolderLocked(RuntimeError):
    """Another driver holds the folder: the message names it, its holder and what to do."""


@contextlib.contextmanager
def driver_lock(folder: pathlib.Path, wait: bool = False, flag: str = "--output") -> Iterator[None]:
    """Hold `folder`'s driver lock for the duration; FolderLocked at once if another process holds it,
    unless `wait`, which waits for it (saying so once). `flag` names the option the folder came from."""
    path = pathlib.Path(folder) / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise FolderLocked(f"{flag} {folder}: cannot create or write it ({error.strerror}); choose a folder "
                           "you can write") from None
    try:
        waited = False
        while not _try_lock(descriptor):
            holder = _holder(path)
            if not wait:
                raise FolderLocked(f"{folder} is in use by another driver ({holder}); wait for it to finish, run "
                                   f"again with --wait-lock to wait for it, or choose another {flag}")
            if not waited:
                print(f"waiting for the driver that holds {folder} ({holder}) to finish", file=sys.stderr, flush=True)
                waited = True
            time.sleep(POLL_SECONDS)
        _write_holder(descriptor)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise


def _write_holder(descriptor: int) -> None:
    """Who holds the lock, for the message a refused driver prints (the lock itself is the kernel's)."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "command": " ".join(sys.argv)}
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, and what needs the disk says it is full
        pass


def _holder(path: pathlib.Path) -> str:
    # Called only by a process that does not hold the lock: closing any descriptor of the file (as
    # read_text does) drops a POSIX lock its process holds.
    try:
        holder = json.loads(path.read_text())
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its pid and host are not written yet"

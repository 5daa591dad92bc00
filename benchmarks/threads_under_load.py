"""The main command's wall time on an idle machine and on one kept busy by a second process, with torch's
own threading (its threads spinning while they wait: GOMP_SPINCOUNT at libgomp's default) and with the
harness's choice (`benchmark.runtime`: as many threads as the process may use, waiting passively when
other processes are running now, by the kernel's count of runnable tasks).

    python benchmarks/threads_under_load.py [--methods all]

The busy process is one Python loop; the loaded runs start once the 1-minute load average shows it.
Each run goes into a fresh folder; the cells' numbers are checked to be the same in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

CONFIGS = {"torch's own (threads spin)": {"GOMP_SPINCOUNT": "300000"}, "the harness's choice": {}}


def main_command(output: pathlib.Path, methods: str, extra_env: dict[str, str]) -> tuple[float, dict]:
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmark", "run", "--methods", methods, "--output", str(output),
                    "--no-tracking"], check=True, capture_output=True, env={**env, **extra_env})
    seconds = time.perf_counter() - started
    results = [json.loads(p.read_text()) for p in sorted((output / "cells").glob("*.json"))]
    return seconds, {"metrics": {r["cell"]["id"]: r["metrics"]["mIoU"] for r in results},
                     "threads": results[0]["provenance"].get("threads")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="all")
    args = parser.parse_args()
    rows, numbers = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for load in ("idle", "busy"):
            busy = None
            if load == "busy":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                deadline = time.monotonic() + 120
                while os.getloadavg()[0] < 0.8 and time.monotonic() < deadline:
                    time.sleep(2)
            try:
                for name, env in CONFIGS.items():
                    seconds, seen = main_command(pathlib.Path(scratch) / f"{load}-{len(rows)}", args.methods, env)
                    rows.append((load, name, seconds, seen["threads"]))
                    numbers.append(seen["metrics"])
                    print(f"{load:5s} {name:28s} {seconds:7.1f} s  threads {seen['threads']}", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print(f"\nmain command (--methods {args.methods}) on {os.cpu_count()} CPUs, wall seconds:")
    for load, name, seconds, _ in rows:
        print(f"  {load:5s} {name:28s} {seconds:7.1f}")
    print("the same numbers in every run:", all(n == numbers[0] for n in numbers))


if __name__ == "__main__":
    main()

"""The fault suite: each test makes a fault happen (a kill, a second driver, a full disk, a bad input,
a hang-up) and checks that nothing finished is lost or changed.

Mark a test `@pytest.mark.fault("what happens", trials=(FAST, FULL))`: it becomes one row of the
"What survives what" table, and takes a `trial` argument (0, 1, ...) when it wants to vary the fault
(kill time, seed). CI runs FAST trials of each; `python -m pytest tests/faults --exhaustive` runs FULL
trials, and the tests marked `exhaustive_only=True` (both options are declared in tests/conftest.py,
which pytest reads first). At the end the table is printed, and written to
`--faults-table PATH` as markdown (the README's table is that file).
"""

from __future__ import annotations

import collections
import pathlib

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(name, trials=(fast, full), exhaustive_only=False): a row of the "
                                       "fault suite's table; see tests/faults/conftest.py")
    config._fault_counts = collections.OrderedDict()


def _trials(config, marker) -> int:
    fast, full = marker.kwargs.get("trials", (1, 1))
    return full if config.getoption("exhaustive") else fast


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("fault")
    if marker is not None and "trial" in metafunc.fixturenames:
        metafunc.parametrize("trial", range(_trials(metafunc.config, marker)))


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is None:
            continue
        if marker.kwargs.get("exhaustive_only") and not config.getoption("exhaustive"):
            item.add_marker(pytest.mark.skip(reason="many trials: run with `python -m pytest tests/faults --exhaustive`"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("fault")
    if marker is None or report.skipped:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        survived, tried = item.config._fault_counts.get(marker.args[0], (0, 0))
        item.config._fault_counts[marker.args[0]] = (survived + int(report.passed), tried + 1)


def table(counts) -> str:
    lines = ["| Fault, made to happen by `tests/faults` | Survived |", "|---|---|"]
    lines += [f"| {name} | {survived}/{tried} |" for name, (survived, tried) in counts.items()]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, config):
    counts = config._fault_counts
    if not counts:
        return
    terminalreporter.write_sep("=", "what survives what")
    terminalreporter.write(table(counts))
    path = config.getoption("faults_table")
    if path:
        pathlib.Path(path).write_text(table(counts))

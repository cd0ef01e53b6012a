"""The audit of CPU used beside a sweep's latency measurements: its windows and sums."""

import os
from pathlib import Path

from benchmarks.sweep_quiet_audit import snapshot, windows


def test_a_window_spans_one_measurement_and_sums_each_roles_cpu_over_it():
    rows = [(0.0, {1: ("worker", 10.0), 2: ("parent", 5.0), 3: ("other", 1.0)}),
            (0.5, {1: ("worker", 10.5), 2: ("parent", 5.0), 3: ("other", 1.0), 9: ("measure", 0.1)}),
            (1.0, {1: ("worker", 10.5), 2: ("parent", 5.1), 3: ("other", 1.2), 9: ("measure", 0.6)}),
            (1.5, {1: ("worker", 10.5), 2: ("parent", 5.2), 3: ("other", 1.2), 9: ("measure", 1.1)}),
            (2.0, {1: ("worker", 11.5), 2: ("parent", 5.2), 3: ("other", 1.2)})]
    (window,) = windows(rows)
    assert window["pid"] == 9 and window["seconds"] == 1.0 and window["workers_alive"] == 1
    assert (window["measure_cpu_s"], window["worker_cpu_s"], window["parent_cpu_s"], window["other_cpu_s"]) == \
        (1.0, 0.0, 0.2, 0.2)  # the worker's CPU before and after the window is not counted


def test_the_snapshot_reads_real_processes_and_leaves_itself_out():
    snap = snapshot()
    assert os.getpid() not in snap and os.getppid() in snap
    assert all(role in ("measure", "worker", "parent", "other") and cpu >= 0 for role, cpu, _ in snap.values())
    assert snap[os.getppid()][2] == Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()[:120]


def test_a_measurement_that_has_exited_unreaped_is_not_counted_as_another_process():
    """An exited, unreaped process keeps its CPU time and loses its command line (role 'other')."""
    rows = [(0.0, {1: ("worker", 10.0, "cli.main worker"), 9: ("measure", 0.1, "archsearch.latency.measure")}),
            (0.5, {1: ("worker", 10.0, "cli.main worker"), 9: ("measure", 0.6, "archsearch.latency.measure"),
                   5: ("other", 0.0, "apt")}),
            (1.0, {1: ("worker", 10.0, "cli.main worker"), 9: ("measure", 1.1, "archsearch.latency.measure"),
                   5: ("other", 0.7, "apt")}),
            (1.5, {1: ("worker", 10.0, "cli.main worker"), 9: ("other", 1.1, ""), 5: ("other", 0.7, "apt")})]
    (window,) = windows(rows)
    assert window["seconds"] == 1.0 and window["measure_cpu_s"] == 1.0 and window["other_cpu_s"] == 0.0
    assert window["besides"] == []  # apt was first seen inside the window, so it is not counted

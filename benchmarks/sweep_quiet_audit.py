"""What else uses the CPU while a sweep measures a trial's latency?

Run beside a sweep (for example during `python -m benchmarks.sweep_latency`): every 0.5 s it reads
each process's CPU time from /proc and notes which processes are sweep workers, the sweep's parent
and latency measurements (`archsearch.latency.measure`, the fresh pinned process a trial's
measurement runs in). For every measurement it reports the CPU seconds the measurement used and
what the workers, the parent and every other process on the machine used in the same window. If
the quiet lock works, the workers use none; what the others use is the rest of the machine.

    python -m benchmarks.sweep_quiet_audit --seconds 600 [--out sweep_quiet_audit]

Results: results/OUT.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.common import RESULTS, run_meta

TICKS = os.sysconf("SC_CLK_TCK")
TOP_MIN_CPU_S = 0.5  # a process besides the measurement that used this much in its window is named
ROLES = (("archsearch.latency.measure", "measure"), ("cli.main worker", "worker"), ("cli.main sweep", "parent"))


def snapshot() -> dict[int, tuple[str, float, str]]:
    """{pid: (role, CPU seconds, command line)} of every process readable now; role 'other' for the rest."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        role = next((name for marker, name in ROLES if marker in command), "other")
        out[int(entry.name)] = (role, (int(fields[11]) + int(fields[12])) / TICKS, command.strip()[:120])
    return out


def sample(seconds: float, every: float = 0.5) -> list[tuple[float, dict]]:
    rows, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        rows.append((time.monotonic(), snapshot()))
        time.sleep(every)
    return rows


def windows(rows: list[tuple[float, dict]]) -> list[dict]:
    """One record per measurement process: its wall span between the first and last sample that
    saw it measuring, the CPU seconds each role used over that span (processes seen at both ends,
    each under its role when first seen), and the processes besides it that used the most.

    A process that is exiting keeps its CPU time and loses its command line, so it would read as
    'other' from then on: the span ends at the last sample that saw it with
    its own command, and roles are taken from the first sample (a first run of this audit counted
    two whole measurements under 'other' that way)."""
    pids = sorted({pid for _, snap in rows for pid, entry in snap.items() if entry[0] == "measure"})
    out = []
    for pid in pids:
        seen = [(t, snap) for t, snap in rows if snap.get(pid, ("",))[0] == "measure"]
        if len(seen) < 2:
            continue
        (t0, first), (t1, last) = seen[0], seen[-1]
        used: dict[str, float] = {}
        besides = []
        for p, (role, cpu, *command) in first.items():
            if p in last:
                used[role] = used.get(role, 0.0) + last[p][1] - cpu
                if p != pid and last[p][1] - cpu >= TOP_MIN_CPU_S:
                    besides.append({"pid": p, "role": role, "cpu_s": round(last[p][1] - cpu, 2),
                                    "command": command[0] if command else ""})
        workers = sum(1 for role, *_ in first.values() if role == "worker")
        out.append({"pid": pid, "seconds": t1 - t0, "workers_alive": workers,
                    **{f"{role}_cpu_s": round(used.get(role, 0.0), 2) for role in ("measure", "worker", "parent", "other")},
                    "besides": sorted(besides, key=lambda b: -b["cpu_s"])[:3]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--out", default="sweep_quiet_audit")
    args = parser.parse_args()
    found = [w for w in windows(sample(args.seconds)) if w["workers_alive"]]  # inside a sweep, not after it
    total = {k: sum(w[k] for w in found) for k in ("seconds", "measure_cpu_s", "worker_cpu_s", "parent_cpu_s",
                                                    "other_cpu_s")}
    record = {"meta": run_meta("sweep_quiet_audit", sampled_seconds=args.seconds), "measurements": found,
              "total": total}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
    m = record["meta"]
    lines = [f"# CPU used beside a sweep's latency measurements (`{args.out}`)", "",
             f"- date: {m['date']}; command: `{m['command']}`; machine: {m['machine']['cpu']}, "
             f"{m['machine']['cpus_available']} CPUs", "- sampled every 0.5 s from /proc for "
             f"{args.seconds:.0f} s while a sweep ran; a window is the span in which a measurement process was seen while sweep workers were alive (the "
             "quiet re-measurements after a sweep are left out)",
             "", f"**{len(found)} measurements, {total['seconds']:.0f} s in all: the measurement processes used "
             f"{total['measure_cpu_s']:.1f} CPU-s; the sweep's workers {total['worker_cpu_s']:.1f} CPU-s, its parent "
             f"{total['parent_cpu_s']:.1f} and every other process {total['other_cpu_s']:.1f} in the same windows.**",
             "", "| measurement pid | seconds | measurement CPU-s | workers CPU-s | parent CPU-s | others CPU-s | "
             f"besides it, >= {TOP_MIN_CPU_S} CPU-s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {w['pid']} | {w['seconds']:.1f} | {w['measure_cpu_s']:.1f} | {w['worker_cpu_s']:.2f} | "
              f"{w['parent_cpu_s']:.2f} | {w['other_cpu_s']:.2f} | "
              + "; ".join(f"{b['role']} {b['cpu_s']:.1f} s `{b['command'][:60]}`" for b in w["besides"]) + " |"
              for w in found]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(total))


if __name__ == "__main__":
    main()

"""Keep latency measurements quiet while local workers train.

Workers that share a machine (and its run directory) coordinate through two lock files: a
measurement closes the *gate*, so no worker starts another training step, then waits on the
*busy* lock until the steps already running finish; it measures on an otherwise idle machine
and opens the gate again. Training holds *busy* shared for one step at a time, so a measurement
waits at most one step per worker. `flock` locks die with their process: a killed worker never
leaves the machine locked. Other heavy phases of a trial (counting MACs, evaluation) run inside
`working` as one unit each.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

import lightning as L


class QuietLock:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._gate = self.directory / "gate.lock"
        self._busy = self.directory / "busy.lock"

    @contextlib.contextmanager
    def _locked(self, path: Path, mode: int) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        """Exclusive use of the machine: no training step of any worker runs inside."""
        with self._locked(self._gate, fcntl.LOCK_EX), self._locked(self._busy, fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """One unit of work (a training step) that measurements wait for and that waits for them."""
        with self._locked(self._gate, fcntl.LOCK_SH):
            pass  # passes at once unless a measurement holds the gate
        with self._locked(self._busy, fcntl.LOCK_SH):
            yield


class YieldToMeasurements(L.Callback):
    """Runs a training's setup (inside `setup_held`, until its first step) and then every training
    step inside `QuietLock.working`."""

    def __init__(self, lock: QuietLock):
        self.lock = lock
        self._step: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def setup_held(self) -> Iterator[None]:
        """Hold `working` from here until the first training step starts: opening the store,
        loading teachers, building the model and the trainer, the data loaders' first batch. A
        worker's first setup after its own measurement took 7-11 CPU-s inside the next worker's
        measurement (`benchmarks/results/sweep_quiet_audit.md`) when only steps were held."""
        self._hold()
        try:
            yield
        finally:
            self._release()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._hold()

    def _hold(self) -> None:
        self._release()  # the setup's hold, if any: never wait at the gate while holding busy
        self._step = contextlib.ExitStack()
        self._step.enter_context(self.lock.working())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._release()

    def on_train_end(self, trainer, pl_module) -> None:
        self._release()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._release()

    def _release(self) -> None:
        if self._step is not None:
            self._step.close()
            self._step = None

"""A local sweep worker for the quiet-lock test, in its own process: it trains the proxy of one
architecture of the tiny space again and again, exactly as a trial does (the sweep's
`YieldToMeasurements` around its setup and every step, its evaluation inside `working`), until a
stop file appears, and logs when each setup and each training step starts and ends
(CLOCK_MONOTONIC, shared by every process on the machine).

    python tests/quiet_worker.py LOCK_DIR LOG STOP SPACE RECIPE
"""

import sys
import time
from pathlib import Path

import lightning as L

from archsearch.proxy.recipe import load_recipe
from archsearch.proxy.run import run_proxy
from archsearch.search.quiet import QuietLock, YieldToMeasurements
from archsearch.space.sampling import sample_archs


class StepLog(L.Callback):
    """Writes 'start T' once the step holds the lock (placed after YieldToMeasurements) or 'end T'
    before it lets go (placed before it); 'setup-end T' before the first step releases the
    setup's hold (placed before it)."""

    def __init__(self, out, event: str):
        self.out, self.event = out, event

    def _write(self) -> None:
        self.out.write(f"{self.event} {time.monotonic()}\n")
        self.out.flush()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.event == "start" or (self.event == "setup-end" and batch_idx == 0 and trainer.global_step == 0):
            self._write()

    def on_train_batch_end(self, *args) -> None:
        if self.event == "end":
            self._write()


def main(lock_dir: str, log_path: str, stop: str, space: str, recipe_path: str) -> None:
    lock = QuietLock(lock_dir)
    spec = sample_archs(space, 1, seed=0)[0]
    recipe = load_recipe(recipe_path)
    with open(log_path, "a") as log:
        while not Path(stop).exists():
            yielding = YieldToMeasurements(lock)
            with yielding.setup_held():
                log.write(f"setup {time.monotonic()}\n")
                log.flush()
                run_proxy(spec, recipe, wandb="disabled", progress=False, eval_guard=lock.working,
                          callbacks=[StepLog(log, "end"), StepLog(log, "setup-end"), yielding, StepLog(log, "start")])


if __name__ == "__main__":
    main(*sys.argv[1:])

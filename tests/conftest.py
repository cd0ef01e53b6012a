import os

import pytest
import torch

pytest_plugins = ["postgres"]  # the session-wide PostgreSQL server fixture

# Under pytest-xdist every worker shares the machine's cores; two workers with two threads each on
# two cores make oneDNN's threads wait on each other (training steps measured 6x slower). One
# thread per worker, also for the `archsearch` subprocesses the end-to-end tests start.
PER_WORKER_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, torch.get_num_threads()))
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _workspace_root_restored():
    """`--runs` sets ARCHSEARCH_RUNS for the process (the CLI's workspace root); a test that runs a
    command in-process must not move the root of every later test in this worker."""
    before = os.environ.get("ARCHSEARCH_RUNS")
    yield
    if before is None:
        os.environ.pop("ARCHSEARCH_RUNS", None)
    else:
        os.environ["ARCHSEARCH_RUNS"] = before


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(PER_WORKER_THREADS)
    yield


def randomise_norm_statistics(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, so that folding them
    into convolutions is actually exercised (fresh BatchNorms fold to the identity)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)

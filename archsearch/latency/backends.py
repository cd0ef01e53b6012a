"""Where a tower runs while it is timed. Each backend turns a module and an example input into a
zero-argument callable performing one inference and returning its latency in milliseconds, so
that GPU backends can time with device events while CPU backends use a monotonic clock."""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from archsearch.errors import UserError

TimedRun = Callable[[], float]


class Backend:
    name: str = ""

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here, or None."""
        return None

    def device(self) -> str:
        from archsearch.environment import cpu_model
        return cpu_model()

    def prepare(self, module: nn.Module, example: torch.Tensor, threads: int, name: str) -> TimedRun:
        raise NotImplementedError


class TorchCPU(Backend):
    name = "torch-cpu"

    def prepare(self, module, example, threads, name):
        torch.set_num_threads(threads)
        module = module.eval()

        def run() -> float:
            with torch.inference_mode():
                start = time.perf_counter()
                module(example)
                return (time.perf_counter() - start) * 1e3
        return run


class TorchCUDA(Backend):
    name = "torch-cuda"

    def unavailable_reason(self):
        return None if torch.cuda.is_available() else "torch-cuda needs a CUDA GPU; none is visible here"

    def device(self):
        return torch.cuda.get_device_name()

    def prepare(self, module, example, threads, name):
        module, example = module.eval().cuda(), example.cuda()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run() -> float:
            with torch.inference_mode():
                torch.cuda.synchronize()
                start.record()
                module(example)
                end.record()
                torch.cuda.synchronize()
                return start.elapsed_time(end)
        return run


class OnnxRuntimeCPU(Backend):
    """ONNX Runtime on the CPU, from a `torch.onnx.export` (torch.export-based) of the tower."""

    name = "onnxruntime-cpu"

    def unavailable_reason(self):
        try:
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as exc:
            return f"onnxruntime-cpu needs the '{exc.name}' package (pip install onnxruntime onnxscript)"
        return None

    def prepare(self, module, example, threads, name):
        import onnxruntime as ort

        path = Path(tempfile.mkdtemp(prefix="archsearch-onnx-")) / f"{name}.onnx"
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=True, input_names=[name],
                          external_data=False, verify=False, report=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: example.numpy()}

        def run() -> float:
            start = time.perf_counter()
            session.run(None, feed)
            return (time.perf_counter() - start) * 1e3
        return run


class CoreML(Backend):
    """Core ML `predict` on the converted ML program (MobileCLIP's protocol: batch 1, all compute units)."""

    name = "coreml"

    def unavailable_reason(self):
        if platform.system() != "Darwin":
            return f"coreml needs macOS (Core ML runs only there); this is {platform.system()}"
        return None

    def device(self):
        return f"{platform.machine()} {platform.mac_ver()[0]}"

    def prepare(self, module, example, threads, name):
        from archsearch.latency.coreml import export_tower, predict_callable

        path = Path(tempfile.mkdtemp(prefix="archsearch-coreml-")) / f"{name}.mlpackage"
        export_tower(module, example, path, input_name=name, output_name=f"{name}_embedding")
        infer = predict_callable(path, {name: example.numpy()})

        def run() -> float:
            start = time.perf_counter()
            infer()
            return (time.perf_counter() - start) * 1e3
        return run


BACKENDS: dict[str, Backend] = {b.name: b for b in (TorchCPU(), TorchCUDA(), OnnxRuntimeCPU(), CoreML())}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UserError(f"--backend: unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    reason = backend.unavailable_reason()
    if reason:
        raise UserError(f"--backend: {reason}")
    return backend

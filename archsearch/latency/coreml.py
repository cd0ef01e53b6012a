"""Core ML export of the inference-time towers: one ``.mlpackage`` (ML program) per tower.

The export follows MobileCLIP's latency protocol: the reparameterized tower, a fixed batch of 1,
compute units ALL, and fp16 compute precision (fp32 on request). Every shape is static (the
example input's), as the measured models are.

Route: ``torch.export.export`` -> ``run_decompositions`` -> ``coremltools.convert(...,
convert_to='mlprogram')``. ``torch.jit.trace`` is not used: with torch 2.14 the text towers'
``nn.MultiheadAttention`` fails the trace check, and converting the trace anyway stops at an
``int`` op; the ``torch.export`` frontend maps ``scaled_dot_product_attention``, ``layer_norm``,
``linear`` and ``conv`` to Core ML ops directly.

What the ``torch.export`` route needs, per kind of block (all handled in `export_tower`):

* The ``alias`` node: it came from the *text* tower of every causal preset (all ViTamins and
  MobileCLIP-B) while that tower sliced its additive causal mask as ``self.attn_mask[:length, :length]``
  (open_clip's `TextTransformer`, which the tower now is, passes the whole mask, so no alias arises
  there today; the fix below stays for any module that slices so). At the full context length both
  slices are no-ops, and PyTorch's Python indexing (``THPVariable_getitem`` in
  ``torch/csrc/autograd/python_variable_indexing.cpp``) skips no-op slices of a multi-index and,
  to still return a fresh view ("ensure we return a shallow copy for things like x[...]"),
  calls ``at::alias``; ``torch.export`` records it as ``aten.alias.default``. (A single slice
  ``t[:n]`` is recorded as ``aten.slice``, so the positional embedding's slice is harmless;
  non-causal towers have no mask to slice, which is why MobileCLIP-S0's converted unpatched.)
  ``aten.alias`` is a core ATen op, so ``run_decompositions`` keeps it, and coremltools 9's
  ``torch.export`` (EXIR) frontend has no translation for it (it knows ``alias_copy``,
  ``detach`` and ``clone``, all as no-ops), so conversion stopped with ``Unsupported fx node alias``.

  Fix: a decomposition-table entry ``aten.alias.default -> identity`` passed to
  ``run_decompositions``. In an exported program no op mutates anything, so an alias has no
  observable effect and removing it is exact. This is the least invasive fix: it is local to
  this export call, it goes through torch's public API (torch re-traces the graph and keeps the
  graph signature consistent, even where an alias would have been a graph output), and it
  neither mutates coremltools' global op registry (``register_torch_op``, which would also
  collide once coremltools ships its own ``alias``) nor edits FX graphs by hand. Patching the
  text tower's slicing would only fix that one spelling; any ``x[...]`` or ``x[:, :]`` in timm
  or user code produces the same node.

* Integer tokens: Core ML model inputs cannot be int64. Integer example inputs are exported as
  int32, so the package's ``tokens`` input is int32 end to end (``nn.Embedding``, ``argmax``
  pooling and the causal mask do not care), rather than relying on coremltools to narrow an
  int64 graph input. coremltools narrows gather indices to 16 bits (``add_int16_cast``) only
  where the gathered table has at most 32767 rows, so CLIP's 49408-token vocabulary keeps its ids
  32-bit (the tests check the saved program for that).

* Decompositions: ``run_decompositions`` with the empty table (plus the ``alias`` entry) rather
  than the default core-ATen table keeps ``scaled_dot_product_attention``, ``layer_norm``, ``linear``
  and ``gelu`` whole, so Core ML gets its fused ops instead of their primitive decompositions.

* ``nn.MultiheadAttention`` (open_clip's text blocks) takes its slow, decomposable path under
  ``torch.export`` even in eval mode without grad (its fast path is skipped while tracing), so it
  exports as ``linear`` + ``scaled_dot_product_attention``; argmax (end-of-text) pooling becomes
  ``argmax`` + ``index`` (a gather in Core ML); both convert without help.
"""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from archsearch.errors import UserError

PRECISIONS = ("fp16", "fp32")
DEFAULT_TARGET = "iOS17"
COMPUTE_UNITS = "ALL"
TOWER_IO = {"image": ("image", "image_embedding"), "text": ("tokens", "text_embedding")}
METADATA_PREFIX = "archsearch."

# Core ML feature array dtypes (ArrayFeatureType.ArrayDataType) by protobuf enum name.
_ARRAY_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "INT32": "int32"}

# Applied on top of the empty table: everything else stays at the ATen level coremltools maps.
_ALIAS_DECOMPOSITIONS = {torch.ops.aten.alias.default: lambda x: x}


def _coremltools():
    import coremltools  # slow and chatty at import: only when exporting

    return coremltools


def _deployment_target(ct, target: str):
    try:
        return getattr(ct.target, target)
    except AttributeError:
        allowed = ", ".join(t.name for t in ct.target if t.name.startswith(("iOS", "macOS")))
        raise UserError(f"target: unknown Core ML deployment target {target!r}; allowed: {allowed}") from None


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".mlpackage":
        raise UserError(f"{path}: a Core ML ML program is saved as a .mlpackage directory; "
                        "allowed: a path ending in .mlpackage")
    return path


def exported_program(module: nn.Module, example_input: torch.Tensor) -> torch.export.ExportedProgram:
    """The ATen-dialect program coremltools converts: `module` exported on `example_input`
    (integer inputs as int32), decomposed with the empty table plus ``alias`` -> identity."""
    example = example_input
    if not example.is_floating_point():
        if example.numel() and (example.min() < torch.iinfo(torch.int32).min
                                or example.max() > torch.iinfo(torch.int32).max):
            raise UserError("example_input: integer values outside the int32 range; Core ML inputs are int32")
        example = example.to(torch.int32)
    program = torch.export.export(module.eval(), (example,))
    return program.run_decompositions(_ALIAS_DECOMPOSITIONS)


def export_tower(
    module: nn.Module,
    example_input: torch.Tensor,
    path: str | Path,
    *,
    input_name: str,
    output_name: str,
    precision: str = "fp16",
    target: str = DEFAULT_TARGET,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Convert one single-input, single-output tower to a Core ML ML program at `path`.

    The package takes `input_name` with exactly the shape of `example_input` (integer inputs as
    int32) and returns `output_name`. `precision` is the compute precision, ``fp16`` (MobileCLIP's
    latency protocol) or ``fp32``; `target` the minimum deployment target (a ``coremltools.target``
    name). The protocol's compute units (ALL) are recorded in the package metadata, as Core ML
    picks compute units when it loads a model, not at conversion. An existing package at `path`
    is replaced. Pass the reparameterized (folded, eval) module: latency is measured on that.
    """
    from archsearch.models.reparam import unfolded_blocks

    path = _check_path(path)
    if precision not in PRECISIONS:
        raise UserError(f"precision: unknown {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if not isinstance(example_input, torch.Tensor):
        raise UserError(f"example_input: expected a torch.Tensor, got {type(example_input).__name__}")
    if input_name == output_name:
        raise UserError(f"output_name: {output_name!r} is already the input's name; allowed: any other name")
    unfolded = unfolded_blocks(module)
    if unfolded:
        raise UserError(f"module: {len(unfolded)} block(s) still have train-time branches (first: {unfolded[0]}); "
                        "export archsearch.models.reparameterize(model) instead")
    ct = _coremltools()
    deployment_target = _deployment_target(ct, target)

    program = exported_program(module, example_input)
    mlmodel = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=deployment_target,
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        compute_units=ct.ComputeUnit.ALL,
        skip_model_load=True,  # loading compiles the model, which only macOS can; `predict` loads it
    )

    spec = mlmodel.get_spec()
    if len(spec.description.input) != 1 or len(spec.description.output) != 1:
        raise UserError(f"module: export_tower converts one-input, one-output towers; this one has "
                        f"{len(spec.description.input)} input(s) and {len(spec.description.output)} output(s)")
    ct.utils.rename_feature(spec, spec.description.input[0].name, input_name)
    ct.utils.rename_feature(spec, spec.description.output[0].name, output_name)
    info = {
        "precision": precision, "compute_units": COMPUTE_UNITS, "target": target,
        "batch": str(example_input.shape[0]) if example_input.ndim else "",
        "torch": torch.__version__, "coremltools": ct.__version__,
        **(metadata or {}),
    }
    for key, value in info.items():
        spec.description.metadata.userDefined[METADATA_PREFIX + key] = str(value)

    if path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True).save(str(path))
    return path


def export_clip(
    spec: Any,
    out_dir: str | Path,
    precision: str = "fp16",
    *,
    target: str = DEFAULT_TARGET,
    model: nn.Module | None = None,
    towers: tuple[str, ...] = ("image", "text"),
) -> dict[str, Path]:
    """Write ``image.mlpackage`` and ``text.mlpackage`` for the reparameterized towers of `spec`
    (an ArchSpec, a preset name or an arch file) into `out_dir`, at batch 1.

    IO: ``image`` float32 ``[1, 3, R, R]`` -> ``image_embedding`` ``[1, embed_dim]``;
    ``tokens`` int32 ``[1, context_length]`` -> ``text_embedding`` ``[1, embed_dim]``
    (unnormalised features, as ``encode_image``/``encode_text`` return them). `model` exports a
    given (e.g. trained) CLIP of that spec instead of a freshly initialised one; `towers`
    restricts the export to some of the towers."""
    from archsearch.latency.cost import example_images, example_tokens
    from archsearch.models import build_image_tower, reparameterize
    from archsearch.models.text import build_text_tower
    from archsearch.spec import ArchSpec, resolve_arch

    if isinstance(spec, (str, Path)):
        spec, _ = resolve_arch(str(spec))
    if not isinstance(spec, ArchSpec):
        raise UserError(f"spec: expected an ArchSpec, a preset name or an arch file, got {type(spec).__name__}")
    towers = (towers,) if isinstance(towers, str) else tuple(towers)
    unknown = [t for t in towers if t not in TOWER_IO]
    if unknown or not towers:
        raise UserError(f"towers: unknown {unknown or 'empty selection'}; allowed: {', '.join(TOWER_IO)}")
    if precision not in PRECISIONS:  # before the (slow) build
        raise UserError(f"precision: unknown {precision!r}; allowed: {', '.join(PRECISIONS)}")
    out_dir = Path(out_dir)
    if model is not None and getattr(model, "spec", spec) != spec:
        raise UserError("model: its spec differs from the spec given; export the model's own spec")
    # Without a model, build each tower alone (same modules as CLIP's), so that at most one tower
    # and its folded copy are in memory: the largest presets have ~0.4 B parameters per tower.
    build = {"image": lambda: model.visual if model is not None else build_image_tower(spec),
             "text": lambda: model.text if model is not None else build_text_tower(spec)}
    examples = {"image": lambda: example_images(spec, 1), "text": lambda: example_tokens(spec, 1)}

    paths = {}
    for tower in towers:
        folded = reparameterize(build[tower]())
        input_name, output_name = TOWER_IO[tower]
        paths[tower] = export_tower(
            folded, examples[tower](), out_dir / f"{tower}.mlpackage", input_name=input_name,
            output_name=output_name, precision=precision, target=target, metadata={"tower": tower},
        )
        del folded
    return paths


def _feature(description) -> dict:
    kind = description.type.WhichOneof("Type")
    if kind != "multiArrayType":
        return {"shape": None, "dtype": kind}
    array = description.type.multiArrayType
    dtype = array.DESCRIPTOR.fields_by_name["dataType"].enum_type.values_by_number[array.dataType].name
    return {"shape": tuple(int(d) for d in array.shape), "dtype": _ARRAY_DTYPES.get(dtype, dtype.lower())}


def package_io(path: str | Path) -> dict:
    """Inputs and outputs of a saved package, read from its spec without compiling or running it:
    ``{"inputs": {name: {"shape", "dtype"}}, "outputs": {...}, "model_type": "mlProgram",
    "spec_version": int, "metadata": {key: value}}`` (metadata without the ``archsearch.`` prefix)."""
    path = _check_path(path)
    if not (path / "Manifest.json").is_file():
        raise UserError(f"{path}: not a Core ML package (no Manifest.json)")
    spec = _coremltools().utils.load_spec(str(path))
    description = spec.description
    return {
        "inputs": {f.name: _feature(f) for f in description.input},
        "outputs": {f.name: _feature(f) for f in description.output},
        "model_type": spec.WhichOneof("Type"),
        "spec_version": spec.specificationVersion,
        "metadata": {k.removeprefix(METADATA_PREFIX): v for k, v in description.metadata.userDefined.items()},
    }


def predict_callable(path: str | Path, inputs: Mapping[str, Any]) -> Callable[[], dict[str, np.ndarray]]:
    """Load a saved package once (compute units ALL) and prepare `inputs` (name -> tensor or array,
    cast to the package's input dtypes) once; return a function running one prediction, for timing.
    macOS only: Core ML's runtime exists nowhere else."""
    if sys.platform != "darwin":
        raise UserError(f"Core ML prediction needs macOS (Core ML's runtime); this is {platform.system()}. "
                        "Use package_io to inspect a package here")
    io = package_io(path)
    missing = sorted(set(io["inputs"]) - set(inputs))
    extra = sorted(set(inputs) - set(io["inputs"]))
    if missing or extra:
        raise UserError(f"inputs: expected {', '.join(io['inputs'])}; "
                        f"{'missing ' + ', '.join(missing) if missing else 'unknown ' + ', '.join(extra)}")
    feed = {}
    for name, value in inputs.items():
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        want = io["inputs"][name]
        if want["shape"] is not None and tuple(array.shape) != want["shape"]:
            raise UserError(f"inputs.{name}: shape {tuple(array.shape)}; the package takes {want['shape']}")
        feed[name] = array.astype(want["dtype"]) if want["dtype"] in _ARRAY_DTYPES.values() else array
    ct = _coremltools()
    mlmodel = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS))

    def run() -> dict[str, np.ndarray]:
        return {name: np.asarray(value) for name, value in mlmodel.predict(feed).items()}
    return run


def predict(path: str | Path, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Run a saved package once on `inputs` (name -> tensor or array) with compute units ALL and
    return its outputs as numpy arrays. macOS only (`UserError` elsewhere)."""
    return predict_callable(path, inputs)()

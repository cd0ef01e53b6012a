"""`archsearch` command line: argument parsing, rich output and exit codes, no logic of its own.

Bad input raises `UserError` in the rooms; here it becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import warnings
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup
from rich.markup import escape
from rich.table import Table

from archsearch.choices import CACHE_POLICIES, EXPORT_FORMATS, SAMPLERS, WANDB_MODES, choice_enum
from archsearch.errors import UserError

# Options with a closed set of values: typer lists them in --help and refuses others (exit 2).
WandbChoice = choice_enum("WandbChoice", WANDB_MODES)
SamplerChoice = choice_enum("SamplerChoice", SAMPLERS)
CachePolicyChoice = choice_enum("CachePolicyChoice", CACHE_POLICIES)
FormatChoice = choice_enum("FormatChoice", EXPORT_FORMATS)

app = typer.Typer(
    name="archsearch",
    help="Neural-architecture search for CLIP-style image-text models (MobileCLIP, ViTamin and their mixes).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Tables need ~100 columns; below that (pipes default to 80) rich would truncate cells.
console = Console(width=max(Console().width, 110))
# timm and open_clip script a few helpers at import; torch 2.14 warns about it on every run.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)


RUNS_OPTION_HELP = "workspace root for runs, teachers, stores and caches (default: $ARCHSEARCH_RUNS, else ./runs)"


@app.callback()
def main_options(
    runs: Optional[str] = typer.Option(None, "--runs", help=RUNS_OPTION_HELP),
) -> None:
    """Neural-architecture search for CLIP-style image-text models (MobileCLIP, ViTamin and their mixes)."""
    from archsearch import workspace

    workspace.use(runs)


def _workspace(runs: Optional[str]) -> str:
    """A command's own --runs (the same as the global one), as the root every room then uses."""
    from archsearch import workspace

    return str(workspace.use(runs))


def user_errors_exit_2(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            print(f"archsearch: error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
    return wrapper


def _runs(items) -> str:
    """'a, a, a, b' -> 'a x3, b'."""
    counted = ((item, len(list(group))) for item, group in itertools.groupby(items))
    return ", ".join(f"{item} x{n}" if n > 1 else item for item, n in counted)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


@app.command()
@user_errors_exit_2
def describe(
    arch: str = typer.Argument(..., help="preset name (e.g. mobileclip_s0, ViTamin-S) or path to an arch.yaml/.json"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
) -> None:
    """Parameters and GMACs per tower, and the stage layout, of a preset or an arch file."""
    from archsearch.latency.cost import measure_cost
    from archsearch.spec import resolve_arch
    from archsearch.spec.arch import layout_summary

    spec, preset = resolve_arch(arch)
    cost = measure_cost(spec)
    if as_json:
        print(json.dumps({"preset": preset, "layout": layout_summary(spec), **cost.to_dict(),
                          "resolution": spec.resolution, "embed_dim": spec.embed_dim,
                          "context_length": spec.text.context_length, "spec": spec.to_dict()}))
        return

    console.print(f"[bold]{preset or arch}[/bold]  {layout_summary(spec)}")
    towers = Table(title="Cost (inference-time, reparameterized; projection included)")
    for col in ("tower", "input", "params", "params (train-time)", "GMACs"):
        towers.add_column(col, justify="right" if col != "tower" else "left")
    towers.add_row("image", f"{spec.resolution}x{spec.resolution}", _millions(cost.image.params),
                   _millions(cost.image.params_train), f"{cost.image.macs / 1e9:.2f}")
    towers.add_row("text", f"{spec.text.context_length} tokens", _millions(cost.text.params),
                   _millions(cost.text.params_train), f"{cost.text.macs / 1e9:.2f}")
    console.print(towers)

    stages = Table(title=f"Image stages (stem: {spec.image.stem.kind}, width {spec.image.stem.width})",
                   box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for col in ("#", "block", "depth", "width", "downsample", "pos", "norm", "stride"):
        stages.add_column(col, no_wrap=True)
    for i, (s, stride) in enumerate(zip(spec.image.stages, spec.image.stage_strides())):
        block = f"{s.mixer}+{s.mlp} x{s.mlp_ratio:g}" if s.mlp != "none" else f"{s.mixer} x{s.mlp_ratio:g}"
        block += f", {s.heads} heads" if s.heads else ""
        stages.add_row(str(i), block, str(s.depth), str(s.width), s.downsample, s.pos,
                       {"batchnorm": "BN", "layernorm": "LN"}[s.norm], str(stride))
    console.print(stages)
    head = spec.image.head
    final_conv = f"final conv x{head.conv_expand:g}" if head.conv_expand else "no final conv"
    console.print(f"head: {final_conv}, pool {head.pool}, norm {head.norm}, "
                  f"projection {spec.image.num_features}->{spec.embed_dim} (bias {head.proj_bias})")
    t = spec.text
    console.print(escape(f"text: {len(t.layers)} layers [{_runs(t.layers)}], width {t.width}, heads {t.heads}, "
                  f"mlp x{t.mlp_ratio:g}, conv kernel {t.conv_kernel}, causal mask {t.causal_mask}, "
                  f"vocab {t.vocab_size}, context {t.context_length}"))


class _MeasureByDefault(TyperGroup):
    """`archsearch latency NAME` measures; `archsearch latency build-table` is a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["measure", *args]
        return super().parse_args(ctx, args)


latency_app = typer.Typer(cls=_MeasureByDefault, no_args_is_help=True,
                          help="Measured latency of the folded towers (and the per-device lookup table).")
app.add_typer(latency_app, name="latency")


def _cpu_list(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--pin: {text!r} is not a comma-separated list of CPU numbers, e.g. 0,1") from None


@latency_app.command("measure")
@user_errors_exit_2
def latency_measure(
    arch: str = typer.Argument(..., help="preset name or path to an arch.yaml/.json"),
    backend: str = typer.Option("torch-cpu", help="torch-cpu, torch-cuda, onnxruntime-cpu or coreml"),
    batch: int = typer.Option(1, help="batch size of both towers"),
    threads: Optional[int] = typer.Option(None, help="threads (default: every CPU available)"),
    pin: Optional[str] = typer.Option(None, help="pin the measurement to these CPUs, e.g. 0,1"),
    fresh_process: bool = typer.Option(False, "--subprocess", help="measure in a fresh Python process"),
    anchor: Optional[str] = typer.Option(None, help="drift correction: time each tower against this preset's in "
                                                     "alternating rounds and report ratio x the anchor's quiet ms "
                                                     "(e.g. mobileclip_s0)"),
    repeats: int = typer.Option(1, help="report the lowest of this many settled medians"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Median latency of the image and text towers, folded, at the spec's resolution and context length."""
    from archsearch.latency.cost import measure_cost
    from archsearch.latency.measure import measure_latency
    from archsearch.spec import resolve_arch

    spec, preset = resolve_arch(arch)
    if anchor is not None:
        from archsearch.spec.presets import resolve_preset_name

        try:
            anchor = resolve_preset_name(anchor)
        except UserError as exc:
            raise UserError(f"--anchor: {exc}") from None
    result = measure_latency(spec, backend, batch, threads, _cpu_list(pin), fresh_process, repeats=repeats,
                             anchor=anchor)
    cost = measure_cost(spec)
    if as_json:
        print(json.dumps({"preset": preset, **result.to_dict(), **cost.to_dict()}))
        return
    table = Table(title=f"{preset or arch}: {result.backend} on {result.device}, batch {result.batch}, "
                        f"{result.threads} threads")
    for col in ("tower", "median ms", "IQR ms", "CV", "runs", "params", "GMACs"):
        table.add_column(col, justify="right" if col != "tower" else "left")
    for tower, stats, tower_cost in (("image", result.image, cost.image), ("text", result.text, cost.text)):
        table.add_row(tower, f"{stats.median_ms:.2f}", f"{stats.iqr_ms:.2f}", f"{stats.cv:.1%}",
                      f"{stats.runs}{'' if stats.settled else ' (unsettled)'}", _millions(tower_cost.params),
                      f"{tower_cost.macs / 1e9:.2f}")
    table.add_row("total", f"{result.total_ms:.2f}", "", "", "", "", "")
    console.print(table)
    if result.correction:
        c = result.correction
        console.print(f"drift-corrected against {c['anchor']} (quiet {c['anchor_quiet_ms']['image_ms']:.2f} + "
                      f"{c['anchor_quiet_ms']['text_ms']:.2f} ms): ratios {c['image']['ratio']:.3f} (image), "
                      f"{c['text']['ratio']:.3f} (text); uncorrected in the same window "
                      f"{c['image']['candidate_ms'] + c['text']['candidate_ms']:.2f} ms")
    console.print(f"device fingerprint {result.fingerprint['id']}")


@latency_app.command("build-table")
@user_errors_exit_2
def latency_build_table(
    space: str = typer.Option("hybrid", help="space name or file whose architectures' blocks are timed"),
    archs: int = typer.Option(30, "--archs", help="architectures sampled from the space (plus its presets)"),
    seed: int = typer.Option(0, help="sampling seed"),
    backend: str = typer.Option("torch-cpu", help="torch-cpu, torch-cuda, onnxruntime-cpu or coreml"),
    batch: int = typer.Option(1, help="batch size"),
    threads: Optional[int] = typer.Option(None, help="threads (default: every CPU available)"),
    cache_dir: str = typer.Option("runs/latency_tables", help="where tables live, one per device fingerprint "
                                                               "(runs/ is the workspace root, see --runs)"),
    cache_policy: CachePolicyChoice = typer.Option("auto", help="unit timings: warm, cold, or auto"),
    rebuild: bool = typer.Option(False, help="re-measure instead of extending this device's table"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Time every distinct block of sampled architectures once: the per-device lookup table."""
    from archsearch.latency.table import build_table
    from archsearch.space.sampling import table_architectures

    table = build_table(*table_architectures(space, archs, seed), backend=backend, batch=batch, threads=threads,
                        cache_dir=cache_dir, rebuild=rebuild, cache_policy=cache_policy.value,
                        progress=None if as_json else console.print)
    summary = {"path": str(Path(table.path).resolve()), "units": len(table.units), "fingerprint": table.fingerprint["id"],
               "overhead_ms": table.overhead_ms}
    if as_json:
        print(json.dumps(summary))
    else:
        console.print(f"{summary['units']} units timed; table {summary['path']}")


@app.command()
@user_errors_exit_2
def spaces(
    files: Optional[list[str]] = typer.Argument(None, help="space files to check (default: the bundled spaces)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """List search spaces with their sizes and presets (loading a space validates it)."""
    from archsearch.space import list_spaces, load_space

    rows = []
    for path in files or list_spaces():
        space = load_space(path)
        rows.append({"name": space.name, "path": str(path), "size": space.size(), "presets": list(space.presets)})
    if as_json:
        print(json.dumps({"spaces": rows}))
        return
    table = Table(title="Search spaces")
    for col in ("space", "architectures", "presets", "file"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], f"{row['size']:,}", ", ".join(row["presets"]), row["path"])
    console.print(table)

@app.command("sweep")
@user_errors_exit_2
def sweep_command(
    space: str = typer.Option("hybrid", "--space", help="space name in spaces/ or a path to a space file"),
    recipe: str = typer.Option("cpu-tiny", "--recipe", help="proxy recipe name in proxies/ or a path to one"),
    trials: int = typer.Option(10, "--trials", help="trials in the study, presets included (a rerun may raise it)"),
    study: Optional[str] = typer.Option(None, "--study", help="study name (default <space>-<recipe>; reruns resume it)"),
    storage: Optional[str] = typer.Option(None, "--storage",
                                          help="Optuna storage URL (default sqlite in runs/<study>/; "
                                               "postgresql://... for workers on many machines)"),
    sampler: SamplerChoice = typer.Option("ehvi", "--sampler", help="ehvi screens its candidates by the latency table"),
    objective: list[str] = typer.Option([], "--objective",
                                        help="extra objective to minimise: params_m or gmacs (repeatable; not with ehvi)"),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="constraint: image + text latency"),
    max_params: Optional[float] = typer.Option(None, "--max-params", help="constraint: image + text params (millions)"),
    workers: Optional[int] = typer.Option(None, "--workers",
                                          help="local worker processes (default: CPUs / the recipe's threads)"),
    seed: int = typer.Option(0, "--seed", help="sampler seed"),
    latency_threads: Optional[int] = typer.Option(None, "--latency-threads",
                                                  help="threads of the latency measurement (default 1: robust "
                                                       "to other load on the machine)"),
    latency_anchor: str = typer.Option("mobileclip_s0", "--latency-anchor",
                                       help="preset timed beside every measurement so that the machine's slow "
                                            "phases cancel (drift correction); none: each model on its own"),
    runs: Optional[str] = typer.Option(None, "--runs", help=RUNS_OPTION_HELP),
    wandb: WandbChoice = typer.Option("offline", "--wandb", help="wandb logging (offline by default)"),
) -> None:
    """Search: Optuna over a space, scoring each trial by measured latency and proxy zero-shot accuracy."""
    import time

    from rich.live import Live

    from archsearch.analysis.front import pareto_front
    from archsearch.analysis.front_rows import front_rows, front_table
    from archsearch.cli.progress import status_line, sweep_view, trial_counts
    from archsearch.search.sweep import SweepOptions, prepare, prepare_data, run_sweep

    options = SweepOptions(space=space, recipe=recipe, trials=trials, study=study, storage=storage, sampler=sampler.value,
                           objectives=tuple(objective), max_latency_ms=max_latency_ms, max_params_m=max_params,
                           workers=workers, seed=seed, latency_threads=latency_threads,
                           latency_anchor=None if latency_anchor.lower() == "none" else latency_anchor,
                           runs=_workspace(runs),
                           wandb=wandb.value)
    run = prepare(options)
    verb = "resuming" if run.resumed else "created"
    console.print(f"{verb} study [bold]{escape(run.study.study_name)}[/bold] in {escape(str(run.directory))}/ "
                  f"(space {run.config.space_name}, recipe {run.config.recipe['name']}, sampler {run.config.sampler}, "
                  f"{run.workers} worker{'s' if run.workers > 1 else ''})")
    if run.requeued:
        console.print(f"queued again the interrupted trials {', '.join(map(str, run.requeued))}")
    prepare_data(run)
    started = time.monotonic()

    def watch(workers) -> None:
        if console.is_terminal:
            with Live(console=console, refresh_per_second=1, transient=False) as live:
                while True:
                    events, alive = workers.poll()  # a dead worker is replaced before it is counted
                    for event in events:
                        live.console.print(f"[bold yellow]{escape(event)}[/bold yellow]")
                    if not alive:
                        break
                    live.update(sweep_view(run.study, trials, started, alive))
                    time.sleep(2)
                live.update(sweep_view(run.study, trials, started, 0))
            return
        seen = None  # a log: a line per change, since a redrawn frame would print only its last state
        while True:
            events, alive = workers.poll()
            for event in events:
                console.print(escape(event), soft_wrap=True)
            now = run.study.get_trials(deepcopy=False)
            if (trial_counts(now), alive) != seen:
                seen = (trial_counts(now), alive)
                console.print(status_line(now, trials, started, alive))
            if not alive:
                return
            time.sleep(2)

    try:
        codes = run_sweep(run, options, watch)
    except KeyboardInterrupt:
        print(f"archsearch: sweep interrupted; the same command resumes study {run.study.study_name} "
              "(interrupted trials run again)", file=sys.stderr)
        raise typer.Exit(130) from None
    front = pareto_front(run.study)
    console.print(front_table(front_rows(front), f"Pareto front of {run.study.study_name}: zero-shot top-1 vs latency "
                                     f"({run.config.latency.threads} threads, {run.config.latency.backend})"))
    console.print(f"trials in {escape(str(run.directory / 'trials'))}/; plots: archsearch pareto {escape(str(run.directory))}")
    if any(codes):
        logs = run.directory / "workers"
        console.print(f"[bold red]a worker exited with an error[/bold red]: see {escape(str(logs))}/")
        raise typer.Exit(1)


@app.command("worker")
@user_errors_exit_2
def worker_command(
    storage: str = typer.Option(..., "--storage", help="the study's storage URL, e.g. postgresql://user@host/db"),
    study: str = typer.Option(..., "--study", help="name of a study created by archsearch sweep"),
    trials: Optional[int] = typer.Option(None, "--trials", help="stop at this many trials (default: the study's)"),
    index: int = typer.Option(0, "--index", help="worker number: offsets the sampler seed"),
    runs: Optional[str] = typer.Option(None, "--runs", help=RUNS_OPTION_HELP),
    wandb: WandbChoice = typer.Option("offline", "--wandb", help="wandb logging (offline by default)"),
) -> None:
    """Join a running study (from any machine that reaches its storage) and run its trials."""
    from archsearch.search.worker import run_worker

    try:
        ran = run_worker(storage, study, index=index, budget=trials, runs=_workspace(runs), wandb=wandb.value)
    except KeyboardInterrupt:
        print(f"archsearch: worker {index} interrupted; its trial is queued again when the sweep resumes",
              file=sys.stderr)
        raise typer.Exit(130) from None
    console.print(f"worker {index}: ran {ran} trial{'s' if ran != 1 else ''} of {escape(study)}")


@app.command("pareto")
@user_errors_exit_2
def pareto_command(
    run_dir: Optional[str] = typer.Argument(None, help="run directory of a study (runs/<study>/)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="the study's storage URL, instead of RUN_DIR"),
    study: Optional[str] = typer.Option(None, "--study", help="study name (with --storage)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
    out: Optional[Path] = typer.Option(None, "--out", help="plots directory (default RUN_DIR/pareto)"),
    vs: Optional[str] = typer.Option(None, "--vs", help="run directory of a second study whose front is overlaid"),
    ref_latency_ms: Optional[float] = typer.Option(None, "--ref-latency-ms",
                                                   help="hypervolume reference latency (default 1.1 x the slowest "
                                                        "scored trial; fix it to compare runs)"),
    runs: Optional[str] = typer.Option(None, "--runs", help=RUNS_OPTION_HELP + "; plots of a --storage study go there"),
) -> None:
    """The Pareto front of a study (zero-shot top-1 vs latency): table, hypervolume, PNG and HTML plots."""
    from archsearch.analysis.report import build_report, write_plots
    from archsearch.analysis.open_study import open_run_dir, open_source
    from archsearch.analysis.front_rows import front_rows, front_table

    runs = _workspace(runs)
    source = open_source(run_dir, storage, study, runs)
    report = build_report(source, open_run_dir(vs) if vs else None, ref_latency_ms)
    files = write_plots(report, out or source.out_dir(runs))
    if as_json:
        print(json.dumps(report.to_dict(files)))
        return
    for front in filter(None, (report.main, report.vs)):
        console.print(front_table(front_rows(front.trials.front),
                                  f"Pareto front of {front.source.name}: {len(front.trials.front)} of "
                                  f"{len(front.trials.scored)} scored trials ({front.source.storage})"))
        console.print(f"hypervolume of {escape(front.source.name)}: {front.hypervolume:.6g} % x ms")
    console.print(f"reference point: {escape(str(report.reference))}")
    console.print(f"plots: {escape(str(files['png']))}, {escape(str(files['html']))}")


@app.command("reinforce")
@user_errors_exit_2
def reinforce_command(
    data: str = typer.Option(..., "--data", help="source: embedded dataset, image folder or WebDataset shards"),
    teachers: list[str] = typer.Option(..., "--teachers", help="teacher reference; repeat for an ensemble"),
    augmentations: int = typer.Option(10, "--augmentations", help="augmented views stored per sample"),
    synthetic_captions: int = typer.Option(5, "--synthetic-captions", help="synthetic captions per sample"),
    out: str = typer.Option(..., "--out", help="store directory (created, or resumed if it exists)"),
    shard: str = typer.Option("0/1", "--shard", help="build shard i of N (contiguous slices of the source), e.g. 3/8"),
    seed: int = typer.Option(0, help="seed of the views and captions (per sample, so shards agree)"),
    batch_size: int = typer.Option(32, "--batch-size", help="samples per teacher batch and per commit"),
    captioner: str = typer.Option("procedural", "--captioner", help="synthetic-caption writer reference"),
    flip: float = typer.Option(0.0, "--flip", help="probability of a left-right flip per view"),
    device: str = typer.Option("cpu", "--device", help="where teachers and captioner run, e.g. cpu or cuda"),
) -> None:
    """Reinforce a dataset (MobileCLIP's DataCompDR): store views, synthetic captions and teacher embeddings."""
    from archsearch.data.augment import AugmentConfig
    from archsearch.data.captioners import load_captioner
    from archsearch.data.readers import open_source
    from archsearch.data.reinforce import parse_shard, reinforce
    from archsearch.data.teachers import load_teacher

    shard_index, augment = parse_shard(shard), AugmentConfig(flip=flip)  # bad flags fail before loading models
    source = open_source(data)
    teacher_list = [load_teacher(ref, device) for ref in teachers]
    report = reinforce(source, teacher_list, load_captioner(captioner, device), augmentations, synthetic_captions,
                       out, shard=shard_index, seed=seed, batch_size=batch_size, augment=augment, progress=True)
    console.print(f"shard {shard_index[0]}/{shard_index[1]}: {report.completed} of {report.shard_size} samples in "
                  f"{escape(str(Path(out).resolve()))} ({report.processed} now, {report.samples_per_second:.1f} samples/s)")


@app.command("proxy")
@user_errors_exit_2
def proxy_command(
    arch: str = typer.Argument(..., help="preset name or path to an arch.yaml/.json (the full-size spec)"),
    recipe: str = typer.Option("cpu-tiny", "--recipe", help="recipe name in proxies/ or a path to one"),
    wandb: WandbChoice = typer.Option("offline", "--wandb", help="wandb logging (offline by default)"),
    out: Optional[Path] = typer.Option(None, "--out", help="logs directory (default runs/proxy/<arch>-<recipe>)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Train the proxy of one architecture on the recipe's reinforced data and score it zero-shot."""
    from archsearch.training.module import NonFiniteLoss
    from archsearch.proxy.recipe import load_recipe
    from archsearch.proxy.run import run_proxy
    from archsearch.spec import resolve_arch
    from archsearch.spec.arch import layout_summary

    spec, preset = resolve_arch(arch)
    loaded = load_recipe(recipe)
    from archsearch import workspace

    out = out or workspace.under("proxy") / f"{preset or Path(arch).stem}-{loaded.name}"
    try:
        result = run_proxy(spec, loaded, wandb=wandb.value, out_dir=out, progress=not as_json)
    except NonFiniteLoss as exc:
        if as_json:
            print(json.dumps({"preset": preset, "status": "failed", "reason": str(exc)}))
        print(f"archsearch: proxy run failed: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"preset": preset, "status": "ok", **result}))
        return
    proxy_spec = spec.from_dict(result["proxy_arch"])
    table = Table(title=f"{preset or arch} on {loaded.name}: proxy {layout_summary(proxy_spec)}")
    for col in ("zero-shot top-1", "I->T R@1", "T->I R@1", "I->T R@5", "T->I R@5", "steps", "train s", "images/s"):
        table.add_column(col, justify="right")
    table.add_row(*(f"{result[k]:.1f}" for k in ("zeroshot_top1", "i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5")),
                  str(result["steps"]), f"{result['train_seconds']:.1f}", f"{result['images_per_second']:.0f}")
    console.print(table)


@app.command("teach")
@user_errors_exit_2
def teach_command(
    recipe: str = typer.Option("cpu-tiny", "--recipe", help="recipe whose teachers to train"),
    force: bool = typer.Option(False, "--force", help="train the teachers locally even where they exist or are shipped"),
    ship: bool = typer.Option(False, "--ship", help="write fp16 copies of the local teachers and their manifest into "
                                                    "the package (archsearch/assets/teachers/), for every later install"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Train the recipe's K teachers (different seeds) on its data, into runs/teachers/; a teacher the
    package ships (sha256-checked) is used instead unless --force."""
    from archsearch.data.teachers import load_teacher
    from archsearch.environment import device_fingerprint
    from archsearch.proxy.recipe import load_recipe
    from archsearch.proxy.shipped import ship_teachers
    from archsearch.proxy.teach import teach, teacher_dirs

    loaded = load_recipe(recipe)
    dirs = teach(loaded, progress=not as_json, force=force)
    if ship:
        manifest = ship_teachers(teacher_dirs(loaded), loaded.name,
                                 machine=device_fingerprint("torch-cpu", loaded.train.threads or 1))
        dirs = teach(loaded, progress=False)
        if not as_json:
            console.print(f"shipped {len(dirs)} teachers: {escape(str(manifest))}")
    teachers = [(d, load_teacher(str(d))) for d in dirs]
    rows = [{"dir": str(d), "id": t.id, "embed_dim": t.embed_dim, "image_size": t.image_size,
             **{k: t.meta.get("metrics", {}).get(k) for k in ("zeroshot_top1", "i2t_r1", "t2i_r1")}}
            for d, t in teachers]
    if as_json:
        print(json.dumps({"teachers": rows}))
        return
    table = Table(title=f"teachers of {recipe}")
    for col in ("teacher", "id", "zero-shot top-1", "I->T R@1", "T->I R@1"):
        table.add_column(col)
    for row in rows:
        table.add_row(escape(row["dir"]), escape(row["id"]),
                      *(f"{row[k]:.1f}" if row[k] is not None else "-" for k in ("zeroshot_top1", "i2t_r1", "t2i_r1")))
    console.print(table)


@app.command("export")
@user_errors_exit_2
def export_command(
    arch: Optional[str] = typer.Argument(None, help="preset name, path to an arch.yaml/.json, or a sweep run "
                                                    "directory (with --trial)"),
    out: str = typer.Option(..., "--out", help="export directory (created; must be new or empty)"),
    trial: Optional[int] = typer.Option(None, "--trial", help="trial number of the run directory or --study"),
    storage: Optional[str] = typer.Option(None, "--storage", help="storage URL of --study (instead of a run directory)"),
    study: Optional[str] = typer.Option(None, "--study", help="study name in --storage"),
    fmt: FormatChoice = typer.Option("all", "--format", help="what to write besides arch.yaml and README.md"),
    force: bool = typer.Option(False, "--force", help="replace an earlier export in --out"),
) -> None:
    """Export an architecture for full training: arch.yaml, OpenCLIP config, train.yaml, Core ML, README."""
    from archsearch.export.writer import check_target, write_export
    from archsearch.spec import resolve_arch

    if trial is not None:
        from archsearch.search.trial_spec import trial_spec

        if arch is not None and storage is not None:
            raise UserError("give either RUN_DIR --trial N or --storage URL --study NAME --trial N, not both")
        check_target(Path(out), force)
        spec, provenance = trial_spec(trial, run_dir=arch, storage=storage, study=study)
    else:
        if arch is None:
            raise UserError("missing ARCH: a preset name, an arch.yaml, or RUN_DIR --trial N")
        if storage or study:
            raise UserError("--storage and --study select a trial: add --trial N")
        spec, preset = resolve_arch(arch)
        check_target(Path(out), force)  # before the slow imports and conversions
        provenance = {"preset": preset} if preset else {"file": str(Path(arch).resolve())}
    result = write_export(spec, out, provenance, fmt=fmt.value, force=force,
                          progress=lambda message: console.print(escape(message)))
    for note in result.notes:
        console.print(f"[bold yellow]note:[/bold yellow] {escape(note)}")
    console.print(f"wrote {escape(str(result.out))}/: {', '.join(result.files)}, README.md, export.json")
    if "open_clip_config.json" in result.files:
        console.print(f"open_clip builds it with timm image tower {result.timm_name}: "
                      f"{result.params['open_clip']:,} parameters, as archsearch's")
    if result.registry_file:
        console.print(f"registered {result.timm_name} for later processes: {escape(str(result.registry_file))}")


@app.command("train", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@user_errors_exit_2
def train_command(ctx: typer.Context) -> None:
    """Train an exported architecture at full size: LightningCLI (--config train.yaml, --ckpt_path to resume,
    `train validate` to evaluate; --help for every option)."""
    from archsearch.train.cli import run

    run(ctx.args)


def main(argv: Optional[list[str]] = None) -> None:
    """The `archsearch` entry point. Input that the parser itself refuses (an unknown option, a
    value outside a choice, a missing argument) ends as the rooms' `UserError`s do: one line on
    stderr, exit 2, rather than typer's multi-line box."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as exc:  # typer's click: usage errors and the rest, each with its exit code
        message = " ".join(exc.format_message().replace("Value error, ", "").split())  # pydantic's prefix
        if message:  # a bare `archsearch` has printed its help already and has no message
            context = getattr(exc, "ctx", None)
            where = f" (try '{context.command_path} --help')" if context is not None else ""
            print(f"archsearch: error: {message}{where}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)

if __name__ == "__main__":
    main()

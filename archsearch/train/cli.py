"""`archsearch train`: Lightning's own CLI (LightningCLI) over `TrainModule` and `ShardDataModule`.

Everything LightningCLI offers works: ``--config train.yaml``, dotted overrides
(``--trainer.devices 4``), ``--print_config``, ``--ckpt_path`` to resume. The subcommand may be
left out: ``archsearch train --config X`` means ``archsearch train fit --config X``;
``archsearch train validate --config X --ckpt_path C`` evaluates a checkpoint. ``model.steps``
is linked to ``trainer.max_steps``, so the schedule and the run always have the same length, and
``model.teacher_dims`` is read from ``data.store``.
Parse errors become `UserError` (one line, exit 2), like every other bad input here.
"""

from __future__ import annotations

import warnings
from argparse import ArgumentError
from typing import Sequence

from archsearch.errors import UserError

SUBCOMMANDS = ("fit", "validate")


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    class TrainCLI(LightningCLI):
        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            return {name: spec for name, spec in LightningCLI.subcommands().items() if name in SUBCOMMANDS}

        def add_arguments_to_parser(self, parser) -> None:
            from archsearch.train.datamodule import store_teacher_dims

            parser.link_arguments("model.steps", "trainer.max_steps")
            parser.link_arguments("data.store", "model.teacher_dims", compute_fn=store_teacher_dims)

    return TrainCLI


def run(args: Sequence[str]) -> None:
    """Run LightningCLI on `args` (``fit`` when no subcommand is given)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from archsearch.train.datamodule import ShardDataModule
    from archsearch.train.train_module import TrainModule

    args = list(args)
    if not args or args[0] not in (*SUBCOMMANDS, "-h", "--help"):
        args = ["fit", *args]
    strict = {"exit_on_error": False}
    main = {**strict, "prog": "archsearch train",
            "description": "Train an exported architecture at full size (LightningCLI; the subcommand defaults to fit)."}
    # `archsearch train` hands its own arguments on (LightningCLI warns that sys.argv differs), and
    # a run without validation data has an empty validation loader on purpose.
    warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
    warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")
    try:
        _cli_class()(TrainModule, ShardDataModule, args=args, seed_everything_default=0, auto_configure_optimizers=False,
                     parser_kwargs={**main, **{name: strict for name in SUBCOMMANDS}},
                     save_config_kwargs={"overwrite": True})
    except (ArgumentError, MisconfigurationException) as exc:  # bad arguments, or a trainer this machine cannot run
        message = " ".join(str(exc).split())
        raise UserError(f"train: {message}") from None

"""``main.py train``: read the command line and run the training stages (rtn_core.training.train)."""
from __future__ import annotations

import os

import torch

from .. import distributed
from ..device import choose_device
from ..training.train import REPO, STAGES, Trainer, load_config


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "cpu.toml"), help="TOML config")
    parser.add_argument("--stage", choices=[*STAGES, "all"], default="all", help="which stage(s) to run")
    parser.add_argument("--out", help="output folder (default: runs/<config name>)")
    parser.add_argument("--init", help="start from these RTN weights (default: the synthetic stage's "
                        "result for the weak stage, else the untrained network)")
    parser.add_argument("--resume", action="store_true", help="continue each stage from its last checkpoint")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if present")


def run(args) -> int:
    config = load_config(args.config)
    out = args.out or os.path.join(REPO, "runs", os.path.splitext(os.path.basename(args.config))[0])
    launched = distributed.launched()  # started by torchrun: DistributedDataParallel over its processes
    device = distributed.start(args.device) if launched else choose_device(args.device)
    if device.type == "cpu" and "threads" in config["model"]:
        torch.set_num_threads(config["model"]["threads"])
    trainer = Trainer(config, out, device)
    init = args.init
    for stage in (STAGES if args.stage == "all" else (args.stage,)):
        previous = os.path.join(out, f"{STAGES[STAGES.index(stage) - 1]}.safetensors")
        if init is None and stage == "weak" and os.path.isfile(previous):
            init = previous
        try:
            trainer.run_stage(stage, init=init, resume=args.resume)
        except KeyboardInterrupt:  # run_stage has written a checkpoint at the step it reached
            return 130
        init = None
    if launched:
        distributed.stop()
    skipped = trainer.store.failed
    print(f"images that failed to decode and were skipped: {len(skipped)}"
          + (f" (first: {skipped[0]})" if skipped else ""))
    return 0

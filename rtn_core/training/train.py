"""``python main.py train``: stage 1 on synthetic warps, stage 2 weakly supervised (DESIGN.md 2.7).

Both stages read one TOML config (``configs/cpu.toml``, ``configs/gpu.toml``). Sample i of a
step's batch is drawn from a generator seeded by (seed, stage, step, i), so a run resumed from a
checkpoint sees the same batches as an uninterrupted one. Under ``torchrun``
(DistributedDataParallel) the config's ``batch`` is the global batch and ``lr`` its rate: of b =
batch / processes samples each, rank r draws samples r*b .. r*b + b - 1, so the global batch is
the same for any number of processes and a checkpoint written under one world size resumes under
another; rank 0 alone validates and writes files. The pretrained trunk stays frozen in stage 1; in
stage 2 it is frozen (trunk outputs cached per image) or fine-tuned at ``trunk_lr_scale`` x lr.

Outputs in ``--out``: ``<stage>_state.pt`` (model, optimiser, step: for ``--resume``),
``<stage>_stepNNNNNN.safetensors`` weights every ``checkpoint_every`` steps and
``<stage>.safetensors`` at the end, and ``log.jsonl`` (loss, steps/s, the share of time spent drawing
synthetic batches, validation).
"""
from __future__ import annotations

import json
import math
import os
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import coords, distributed
from . import synthetic
from ..atomic import atomic_path
from .data import ImageStore, Photo, box_mask, imagenet_photos, list_images, pets_photos
from ..model import DEFAULT_SCHEDULE, RTN, window_loss
from ..weights import load_rtn_weights, save_rtn_weights

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAGES = ("synthetic", "weak")
HOLD_OUT_EVERY = 10  # every 10th imagenet image / pets breed is kept for validation
VALIDATION_SEED = [0, 99]

def load_config(path: str) -> dict:
    """Read a TOML config; data paths are taken relative to the repository root."""
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{os.path.basename(path)}: {exc}") from None
    for key in ("model", "data"):
        if key not in config:
            raise ValueError(f"{os.path.basename(path)}: missing [{key}] table")
    for key, value in config["data"].items():
        config["data"][key] = os.path.join(REPO, value)
    return config

class Trainer:
    """Holds the model, the data and the loop shared by both stages."""

    def __init__(self, config: dict, out: str, device: torch.device):
        self.config, self.out, self.device = config, out, device
        model_cfg = config["model"]
        self.seed = model_cfg.get("seed", 0)
        torch.manual_seed(self.seed)
        self.model = RTN(model_cfg.get("backbone", "efficientnet-lite0"),
                         schedule=tuple(model_cfg.get("schedule", DEFAULT_SCHEDULE))).to(device)
        self.size = model_cfg.get("input_size", 256)
        self.store = ImageStore(self.size)
        self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="warps")
        self.drawing_seconds = 0.0  # time spent drawing synthetic batches: the log's data_share
        self.tap_cache: dict = {}
        imagenet = list_images(config["data"]["imagenet"])
        self.synthetic_train = [p for i, p in enumerate(imagenet) if i % HOLD_OUT_EVERY]
        self.synthetic_val = [p for i, p in enumerate(imagenet) if not i % HOLD_OUT_EVERY]
        pets = pets_photos(config["data"]["pets"])
        breeds = sorted({os.path.basename(p.path).rsplit("_", 1)[0] for p in pets})
        held = set(breeds[::HOLD_OUT_EVERY])
        self.weak_val = [p for p in pets if os.path.basename(p.path).rsplit("_", 1)[0] in held]
        self.weak_train = [p for p in pets if p not in self.weak_val]
        if config.get("weak", {}).get("imagenet_groups", True):
            train_paths = set(self.synthetic_train)
            self.weak_train += [p for p in imagenet_photos(config["data"]["imagenet"]) if p.path in train_paths]
        self.warp_params = synthetic.WarpParams(**config["synthetic"].get("warp", {}))

    # ------------------------------------------------------------ the loop

    def run_stage(self, stage: str, init: str | None = None, resume: bool = False) -> None:
        if stage not in self.config:
            raise ValueError(f"the config has no [{stage}] table")
        cfg = self.config[stage]
        os.makedirs(self.out, exist_ok=True)
        state_path = os.path.join(self.out, f"{stage}_state.pt")
        if init:
            load_rtn_weights(self.model, init)
        optimiser = self.make_optimiser(stage)
        start = 0
        if resume and os.path.isfile(state_path):
            state = torch.load(state_path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            start = state["step"]
            print(f"{stage}: resumed at step {start}")
        steps, warmup = cfg["steps"], cfg.get("warmup", 0)
        rank, world = distributed.rank(), distributed.world_size()
        if cfg["batch"] % world:
            raise ValueError(f"[{stage}] batch = {cfg['batch']} (the global batch) does not split over {world} processes")
        share = range(rank * cfg["batch"] // world, (rank + 1) * cfg["batch"] // world)
        loss_fn = self.synthetic_loss if stage == "synthetic" else self.weak_loss
        if world > 1:  # backward averages the gradients over the processes
            loss_fn = DistributedDataParallel(_StageLoss(self.model, loss_fn))
        self.model.train()
        self.model.backbone.eval()  # batch-norm statistics of the pretrained trunk stay as they are
        bar = tqdm(range(start, steps), initial=start, total=steps, desc=stage, unit="step", dynamic_ncols=True,
                   disable=rank != 0)
        running, began, done = None, time.time(), start
        self.drawing_seconds = 0.0
        try:
            for step in bar:
                for group in optimiser.param_groups:
                    group["lr"] = group["initial_lr"] * learning_rate_scale(step, steps, warmup)
                rngs = [np.random.default_rng([self.seed, STAGES.index(stage), step, i]) for i in share]
                torch.manual_seed(self.seed * 1_000_003 + step)
                loss = loss_fn(rngs, len(rngs))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.get("clip", 1.0))
                optimiser.step()
                done = step + 1
                value = distributed.average(loss.item())
                running = value if running is None else 0.95 * running + 0.05 * value
                bar.set_postfix(loss=f"{running:.4f}", refresh=False)  # redrawn at tqdm's own pace
                if (done % cfg["checkpoint_every"] == 0 or done == steps) and rank == 0:
                    self._checkpoint(stage, done, optimiser, state_path)
                    record = {"stage": stage, "step": done, "loss": running, "step_loss": value, "processes": world,
                              "steps_per_s": (done - start) / (time.time() - began),
                              **({"data_share": round(self.drawing_seconds / (time.time() - began), 3)}
                                 if stage == "synthetic" else {}),
                              **self.validate(stage)}
                    self._log(record)
                    bar.write(json.dumps(record))
                    self.model.train()
                    self.model.backbone.eval()
        except KeyboardInterrupt:  # a time limit (bench/gpu_run.sh) or Ctrl+C: keep what was learned
            if rank == 0 and done > start:
                self._checkpoint(stage, done, optimiser, state_path)
                print(f"{stage}: stopped at step {done}, checkpoint written; continue with --resume")
            raise
        bar.close()
        if rank == 0:
            save_rtn_weights(self.model, os.path.join(self.out, f"{stage}.safetensors"),
                             {"stage": stage, "steps": steps, "config": self.config})
        distributed.barrier()  # the next stage on every rank starts from these files

    def make_optimiser(self, stage: str) -> torch.optim.Optimizer:
        """AdamW over the learned layers: all but the trunk, or only the geometric network when the
        stage sets ``freeze_features`` (the features then keep the backbone's semantics); the trunk
        frozen, or at ``trunk_lr_scale`` x lr (stage 2)."""
        cfg = self.config[stage]
        trunk_scale = 0.0 if stage == "synthetic" else cfg.get("trunk_lr_scale", 0.0)
        self.trunk_frozen = trunk_scale == 0.0
        trunk = set(map(id, self.model.backbone.trunk_parameters()))
        if cfg.get("freeze_features", False):
            learned = list(self.model.geometry.parameters())
        else:
            learned = [p for p in self.model.parameters() if id(p) not in trunk]
        learned_ids = set(map(id, learned))
        for p in self.model.parameters():
            p.requires_grad_(id(p) in learned_ids or (id(p) in trunk and not self.trunk_frozen))
        groups = [{"params": learned, "lr": cfg["lr"]}]
        if not self.trunk_frozen:
            groups.append({"params": self.model.backbone.trunk_parameters(), "lr": cfg["lr"] * trunk_scale})
        optimiser = torch.optim.AdamW(groups, weight_decay=cfg.get("weight_decay", 0.0))
        for group in optimiser.param_groups:
            group["initial_lr"] = group["lr"]
        return optimiser

    def _checkpoint(self, stage, step, optimiser, state_path) -> None:
        save_rtn_weights(self.model, os.path.join(self.out, f"{stage}_step{step:06d}.safetensors"),
                         {"stage": stage, "step": step})
        with atomic_path(state_path) as temp:
            torch.save({"model": self.model.state_dict(), "optimiser": optimiser.state_dict(), "step": step}, temp)

    def _log(self, record: dict) -> None:
        with open(os.path.join(self.out, "log.jsonl"), "a") as handle:
            handle.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------ stage 1: synthetic warps

    def synthetic_batch(self, rng, batch: int, paths: list[str]):
        """(source, target) image tensors, ground-truth warps; the source side is jittered.
        ``rng``: one generator for the whole batch (samples drawn in turn), or a list of one per
        sample (samples drawn side by side on ``self.pool``: the warp's resampling, not the GPU,
        sets a step's pace, and OpenCV and NumPy release the GIL while they work)."""
        began = time.perf_counter()
        if isinstance(rng, list):
            samples = list(self.pool.map(lambda one: self._synthetic_sample(one, paths), rng))
        else:
            samples = [self._synthetic_sample(rng, paths) for _ in range(batch)]
        sources, targets, warps = zip(*samples)
        self.drawing_seconds += time.perf_counter() - began
        return self._tensor(sources), self._tensor(targets), list(warps)

    def _synthetic_sample(self, rng, paths: list[str]):
        """One (jittered source, target, warp), all drawn from ``rng``."""
        image = None
        while image is None:
            image = self.store.get(paths[rng.integers(len(paths))])
        warp = synthetic.random_warp(rng, self.warp_params)
        source, _ = synthetic.warp_image(image, warp)
        return synthetic.photometric_jitter(source, rng), image, warp

    def _tensor(self, images) -> torch.Tensor:
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0).to(self.device)

    def _taps(self, images: torch.Tensor) -> dict:
        backbone = self.model.backbone
        with torch.set_grad_enabled(not self.trunk_frozen):
            return backbone.trunk(backbone.normalise(images))

    def synthetic_loss(self, rng, batch: int, paths: list[str] | None = None) -> torch.Tensor:
        """Masked L1 between each updated field's translation and the true flow, summed over updates."""
        source, target, warps = self.synthetic_batch(rng, batch, paths or self.synthetic_train)
        return self.flow_losses(source, target, warps).sum()

    def flow_losses(self, source, target, warps) -> torch.Tensor:
        """(K,) masked mean L1 flow error (normalised units) of the fields T^1..T^K."""
        heads = self.model.backbone.heads
        steps = list(self.model.iterate_features(heads(self._taps(source)), heads(self._taps(target))))
        losses = []
        for step in steps[1:]:
            height, width = step.field.shape[-2:]
            truth = [synthetic.flow_on_grid(w, height, width) for w in warps]
            flow = torch.from_numpy(np.stack([t[0] for t in truth])).to(self.device)
            mask = torch.from_numpy(np.stack([t[1] for t in truth])).to(self.device)
            error = (step.field[:, 4:6] - flow).abs().sum(1)
            losses.append((error * mask).sum() / mask.sum().clamp(min=1.0))
        return torch.stack(losses)

    # ------------------------------------------------------------ stage 2: weak pairs

    def weak_pairs(self, rng, batch: int, photos: list[Photo]):
        """``batch`` same-group (source, target, flipped) triples; order random, flips joint."""
        groups: dict[str, list[Photo]] = {}
        for photo in photos:
            groups.setdefault(photo.group, []).append(photo)
        names = sorted(groups)
        weights = np.array([len(groups[n]) for n in names], dtype=np.float64)
        pairs = []
        for rng in _per_sample(rng, batch):
            pair = None
            while pair is None or any(self.store.get(p.path) is None for p in pair[:2]):
                members = groups[names[rng.choice(len(names), p=weights / weights.sum())]]
                first, second = rng.choice(len(members), 2, replace=False)
                pair = (members[first], members[second], bool(rng.random() < 0.5))
            pairs.append(pair)
        return pairs

    def _cached_taps(self, photo: Photo, flipped: bool) -> dict:
        """Trunk outputs of one image; cached (float16) while the trunk is frozen."""
        key = (photo.path, flipped)
        if self.trunk_frozen and key in self.tap_cache:
            return {k: v.float() for k, v in self.tap_cache[key].items()}
        image = self.store.get(photo.path)
        taps = self._taps(self._tensor([image[:, ::-1] if flipped else image]))
        if self.trunk_frozen:
            self.tap_cache[key] = {k: v.half() for k, v in taps.items()}
        return taps

    def weak_loss(self, rng, batch: int, photos: list[Photo] | None = None) -> torch.Tensor:
        """The window loss at the last iteration, inside the source box where one is known."""
        pairs = self.weak_pairs(rng, batch, photos or self.weak_train)
        return self._window_loss(pairs, self._pair_steps(pairs)[-1])

    def _pair_steps(self, pairs) -> list:
        taps = [[self._cached_taps(p, flip) for p in (source, target)] for source, target, flip in pairs]
        stacked = [{k: torch.cat([t[side][k] for t in taps]) for k in taps[0][0]} for side in (0, 1)]
        heads = self.model.backbone.heads
        return list(self.model.iterate_features(heads(stacked[0]), heads(stacked[1])))

    def _window_loss(self, pairs, last) -> torch.Tensor:
        height, width = last.correlation.shape[-2:]
        masks = [box_mask(source, height, width) for source, _, _ in pairs]
        masks = [m[:, ::-1] if flip else m for m, (_, _, flip) in zip(masks, pairs)]
        mask = torch.from_numpy(np.ascontiguousarray(np.stack(masks))).to(self.device)
        return window_loss(last.correlation, mask)

    # ------------------------------------------------------------ validation (held-out training data)

    @torch.no_grad()
    def validate(self, stage: str) -> dict:
        """Held-out figures, never PF-WILLOW (a test set): on held-out imagenet images, the L1
        flow error (|dx| + |dy|) of each iteration on synthetic warps, in pixels at the input size;
        on pairs of held-out pets breeds, the weak loss and, per iteration, the fraction of a 3x3
        grid of points inside the source head box that land inside the target head box."""
        self.model.eval()
        drawn_for_training = self.drawing_seconds
        rng = np.random.default_rng(VALIDATION_SEED)  # the same held-out batches whatever the training seed
        count = self.config[stage].get("validation_batches", 4)
        batch = self.config[stage]["batch"]
        flow = torch.stack([self.flow_losses(*self.synthetic_batch(rng, batch, self.synthetic_val))
                            for _ in range(count)]).mean(0)
        weak, hits = [], []
        for _ in range(count):
            pairs = self.weak_pairs(rng, batch, self.weak_val)
            steps = self._pair_steps(pairs)
            weak.append(self._window_loss(pairs, steps[-1]).item())
            hits.append([box_hits(pairs, step.field) for step in steps])
        self.drawing_seconds = drawn_for_training
        return {"val_flow_l1_px": [round(v * self.size / 2, 2) for v in flow.tolist()],
                "val_weak_loss": round(float(np.mean(weak)), 4),
                "val_box_hits": [round(float(v), 3) for v in np.mean(hits, axis=0)]}

class _StageLoss(torch.nn.Module):
    """A stage's loss as a module's forward, so DistributedDataParallel can wrap the model."""

    def __init__(self, model: RTN, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, rng, batch: int) -> torch.Tensor:
        return self.loss_fn(rng, batch)

def _per_sample(rng, batch: int) -> list:
    """One generator per sample: ``rng`` itself when it is a list, else ``batch`` times the one given."""
    return rng if isinstance(rng, list) else [rng] * batch

def learning_rate_scale(step: int, steps: int, warmup: int = 0) -> float:
    """Fraction of the peak rate at ``step``: a linear warm-up over ``warmup`` steps (so a fresh
    optimiser does not undo the weights it starts from), then a cosine decay to 10% at the end."""
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    return ramp * (0.55 + 0.45 * math.cos(math.pi * step / steps))

def box_hits(pairs, field: torch.Tensor) -> float:
    """Fraction of a 3x3 grid inside each source box (at 1/4, 1/2, 3/4) that ``field`` maps
    into the target box; (source, target, flipped) pairs of boxed photos, field (B, 6, h, w)."""
    fractions = np.array([0.25, 0.5, 0.75])
    hits = []
    for (source, target, flip), one in zip(pairs, field):
        corners = [coords.pixels_to_normalised(np.reshape(p.box, (2, 2)), p.size) * ([-1, 1] if flip else 1)
                   for p in (source, target)]
        (sx0, sy0), (sx1, sy1) = corners[0]
        points = np.array([[sx0 + fx * (sx1 - sx0), sy0 + fy * (sy1 - sy0)] for fy in fractions for fx in fractions])
        grid = torch.from_numpy(points).float().to(field.device)[None, None]
        flow = F.grid_sample(one[None, 4:6], grid, mode="bilinear", padding_mode="border", align_corners=False)
        matched = points + flow[0, :, 0].T.cpu().numpy()
        low, high = np.minimum(*corners[1]), np.maximum(*corners[1])
        hits.append(((matched >= low) & (matched <= high)).all(axis=1).mean())
    return float(np.mean(hits))

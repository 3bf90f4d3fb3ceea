"""Label transfer split across the processes of a torchrun launch, resumable after a kill.

Targets are numbered in command-line order. Rank 0 reads what earlier runs finished and tells
every rank; the unfinished targets are dealt out in turn (rank r takes every world-size-th).
Each rank prepares the source once and appends one line per finished target to its shard,
``<out>.work/rank-<r>.jsonl``: one write of a whole line, flushed to disk, so a kill leaves at
worst a torn last line, which is ignored and cut off. Rank 0 merges the shards in target
order into the LabelSet a single-process run returns, so the export is the same file.
A restart with the same arguments (any number of processes) skips the recorded targets;
``run.json`` in the work folder refuses a restart with different ones (source, keypoints, points
fixed by hand, settings, targets, weights). The work folder is
kept after the export; delete it to transfer the same targets again.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from typing import Callable

import torch.distributed as dist

from .. import distributed
from ..atomic import write_atomic
from .keypoints import ImageLabels, LabelSet
from ..matcher import Matcher
from .transfer import apply_results, hand_fixed, iter_transfer, model_info

PROGRESS_EVERY_S = 10.0


def work_folder(out: str) -> str:
    """The folder beside ``--out`` that holds the run's shards."""
    return os.path.abspath(out).rstrip(os.sep) + ".work"


def transfer_sharded(labels: LabelSet, make_matcher: Callable, targets: list[str], out: str,
                     device: str | None = None) -> tuple[LabelSet | None, Matcher]:
    """Join the torchrun process group, transfer this rank's share of ``targets`` (imposing the
    points fixed by hand, as :func:`transfer_into` does); return the merged LabelSet (what
    :func:`transfer_into` returns for the same targets) on rank 0, None on the other ranks, and
    the matcher. ``make_matcher()`` is called after the process's GPU is chosen."""
    distributed.start(device)
    try:
        matcher = make_matcher()
        folder = work_folder(out)
        rank, world = distributed.rank(), distributed.world_size()
        labels = labels.add_targets(targets)
        fingerprint = {"labels": labels.to_dict(), "targets": list(targets), "model": model_info(matcher)}
        verdict = [_claim(folder, fingerprint) if rank == 0 else None]
        dist.broadcast_object_list(verdict, src=0)  # (error or None, indices already finished)
        error, finished = verdict[0]
        if error:
            raise ValueError(error)
        mine = [i for i in range(len(targets)) if i not in finished][rank::world]
        began = time.time()
        _transfer_share(matcher, labels, targets, mine, os.path.join(folder, f"rank-{rank}.jsonl"),
                        f"[rank {rank}/{world}]")
        distributed.barrier()
        if rank != 0:
            return None, matcher
        results = read_shards(folder)
        missing = [targets[i] for i in range(len(targets)) if i not in results]
        if missing:
            raise ValueError(f"{len(missing)} targets have no result in {folder} (first: {missing[0]})")
        elapsed = time.time() - began
        done_now = len(targets) - len(finished)
        print(f"transfer: {len(targets)} targets ({len(finished)} from earlier runs), {done_now} in "
              f"{elapsed:.1f} s on {world} processes ({done_now / max(elapsed, 1e-9):.2f} images/s)",
              file=sys.stderr, flush=True)
        return apply_results(labels, [results[i] for i in range(len(targets))], fingerprint["model"]), matcher
    finally:
        distributed.stop()


def _claim(folder: str, fingerprint: dict) -> tuple[str | None, set[int]]:
    """Rank 0: record the run in ``folder`` or check that it is the recorded one; the finished indices."""
    record = os.path.join(folder, "run.json")
    try:
        if not os.path.isfile(record):
            write_atomic(record, json.dumps(fingerprint, indent=1))
        with open(record, encoding="utf-8") as handle:
            if json.load(handle) != fingerprint:
                return (f"{folder} holds another transfer (different source, keypoints, settings, targets "
                        "or weights): delete it or choose another --out", set())
        return None, set(read_shards(folder))
    except (OSError, ValueError) as exc:  # told to every rank, so none waits for rank 0 forever
        return f"cannot use the work folder {folder}: {exc}", set()


def read_shards(folder: str) -> dict[int, ImageLabels]:
    """{target index: result} from every complete line of every shard in ``folder``."""
    results = {}
    for path in sorted(glob.glob(os.path.join(folder, "rank-*.jsonl"))):
        for line in _complete_lines(path):
            try:
                record = json.loads(line)
                results.setdefault(int(record["index"]), ImageLabels.from_dict(record["labels"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line that is not a record: skipped, its target runs again
    return results


def _peak_rss_mb() -> float:
    try:
        import resource  # Unix only
    except ImportError:
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _complete_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    return text[:text.rfind("\n") + 1].splitlines()


def _transfer_share(matcher, labels: LabelSet, targets: list[str], mine: list[int], shard: str, name: str) -> None:
    """Transfer targets[i] for i in ``mine``, appending each result to ``shard`` as it is finished."""
    if os.path.isfile(shard):  # cut a torn last line, so the next line starts clean
        with open(shard, "rb+") as handle:
            data = handle.read()
            handle.truncate(data.rfind(b"\n") + 1)
    began = last = time.time()
    with open(shard, "a", encoding="utf-8") as handle:
        fresh_results = iter_transfer(matcher, labels.source, [targets[i] for i in mine], labels.settings,
                                      hand_fixed(labels)) if mine else ()
        for done, (index, fresh) in enumerate(zip(mine, fresh_results), start=1):
            handle.write(json.dumps({"index": index, "labels": fresh.to_dict()}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            if time.time() - last >= PROGRESS_EVERY_S or done == len(mine):
                last = time.time()
                print(f"{name} {done}/{len(mine)} targets, {done / max(last - began, 1e-9):.2f} images/s, "
                      f"peak RSS {_peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)
    if not mine:
        print(f"{name} nothing left to do", file=sys.stderr, flush=True)

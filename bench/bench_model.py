"""Benchmark the RTN matcher: median ms per pair, per iteration and for the backbone, ms per
re-run of a pair with one fixed point (on its prepared backbone maps), ms per label-transfer target
(forward and backward match), and peak RSS.

    python bench/bench_model.py [--device cpu|cuda] [--sizes 256 320] [--runs 10] [--weights FILE]

Each (device, size) runs in a fresh process so its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "samples")


def measure(device: str, size: int, runs: int, weights: str | None) -> dict:
    import torch
    from rtn_core.images import load_image
    from rtn_core.labels.keypoints import ImageLabels, Point, TransferSettings
    from rtn_core.matcher import Matcher, to_input_tensor
    from rtn_core.labels.transfer import transfer_targets

    matcher = Matcher(weights=weights, device=device, input_size=size)
    source = load_image(os.path.join(SAMPLES, "cat-chelsea.png"))
    target = load_image(os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
    sync = torch.cuda.synchronize if matcher.device.type == "cuda" else (lambda: None)

    def timed(function):
        sync()
        start = time.perf_counter()
        value = function()
        sync()
        return value, (time.perf_counter() - start) * 1000

    for _ in range(3):
        matcher.match(source, target)
    pairs, backbones, iterations = [], [], []
    images = [to_input_tensor(im.pixels, size).to(matcher.device) for im in (source, target)]
    for _ in range(runs):
        pairs.append(timed(lambda: matcher.match(source, target))[1])
        with torch.inference_mode():
            (pre_s, pre_t), backbone_ms = timed(lambda: matcher.model.siamese_features(*images))
            backbones.append(backbone_ms)
            steps = matcher.model.iterate_features(pre_s, pre_t)
            per_step = []
            while True:
                step, ms = timed(lambda: next(steps, None))
                if step is None:
                    break
                per_step.append(ms)
            iterations.append(sum(per_step) / len(per_step))
    prepared = matcher.prepare(source), matcher.prepare(target)
    fixed = [((200.0, 150.0), (300.0, 250.0))]  # one correction, re-run on the pair's prepared maps
    refines = [timed(lambda: matcher.match(*prepared, fixed=fixed))[1] for _ in range(runs)]
    labelled = ImageLabels(source.path, source.original_size, (Point("a", 100, 120), Point("b", 300, 200)))
    target_paths = [target.path] * runs
    _, transfer_ms = timed(lambda: transfer_targets(matcher, labelled, target_paths, TransferSettings()))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"device": str(matcher.device), "size": size, "threads": torch.get_num_threads(),
            "pair_ms": statistics.median(pairs), "iteration_ms": statistics.median(iterations),
            "backbone_ms": statistics.median(backbones), "refine_ms": statistics.median(refines),
            "transfer_ms": transfer_ms / runs,
            "peak_rss_mb": peak_kib / 1024,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if matcher.device.type == "cuda" else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"],
                        help="repeatable; default: cpu, plus cuda when present")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 320])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--weights", help="RTN weights (default: the shipped ones)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.device[0], args.sizes[0], args.runs, args.weights)))
        return
    if not args.device:
        from rtn_core.device import cuda_status
        args.device = ["cpu"] + (["cuda"] if cuda_status()[0] else [])
    print(f"{'device':8} {'size':>5} {'threads':>7} {'pair ms':>8} {'iter ms':>8} {'backbone ms':>11} "
          f"{'refine ms':>9} {'transfer ms':>11} {'peak RSS MB':>11}")
    for device in args.device:
        for size in args.sizes:
            command = [sys.executable, __file__, "--one", "--device", device, "--sizes", str(size),
                       "--runs", str(args.runs)] + (["--weights", args.weights] if args.weights is not None else [])
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(f"{row['device']:8} {row['size']:>5} {row['threads']:>7} {row['pair_ms']:>8.1f} "
                  f"{row['iteration_ms']:>8.1f} {row['backbone_ms']:>11.1f} {row['refine_ms']:>9.1f} "
                  f"{row['transfer_ms']:>11.1f} "
                  f"{row['peak_rss_mb']:>11.0f}"
                  + (f"   CUDA peak {row['cuda_peak_mb']:.0f} MB" if row["cuda_peak_mb"] else ""))


if __name__ == "__main__":
    main()

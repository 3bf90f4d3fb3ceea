"""Measure the single-machine throughput levers one against another: glibc keeping freed memory
(``rtn_core.host_memory``), channels_last, and pairs in a batch, as CPU milliseconds a pair;
and the window correlation (one matmul per window row) against the per-offset loop it replaced.

    python bench/bench_throughput.py [--rounds 3] [--batches 1 8] [--threads 1]

Each configuration runs in a fresh process (the allocator setting is process-wide), and the
configurations alternate round after round, so drift of a shared machine hits them alike.
CPU time (not wall time) of one torch thread is reported, median over passes, then the median
over rounds; minor page faults per pair show what the allocator setting removes.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
LEVERS = [(False, False), (True, False), (True, True)]  # (keep freed memory, channels_last)


def measure(batch: int, keep: bool, channels_last: bool, threads: int, passes: int = 6) -> dict:
    if keep:
        from rtn_core.host_memory import keep_freed_memory
        keep_freed_memory()
    import torch
    from rtn_core.images import load_image
    from rtn_core.matcher import to_input_tensor
    from rtn_core.model import RTN
    torch.set_num_threads(threads)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = RTN().eval().to(memory_format=layout)
    samples = os.path.join(REPO, "resources", "samples")
    source, target = (to_input_tensor(load_image(os.path.join(samples, name)).pixels, 256)
                      .repeat(batch, 1, 1, 1).contiguous(memory_format=layout)
                      for name in ("cat-chelsea.png", "cat-pexels-20787.jpg"))
    cpu_ms, faults = [], []
    with torch.inference_mode():
        model(source, target)  # warm-up
        for _ in range(passes):
            before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
            model(source, target)
            cpu_ms.append((time.process_time() - start) * 1000 / batch)
            faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / batch)
    return {"cpu_ms": statistics.median(cpu_ms), "faults": statistics.median(faults)}


def per_offset_correlation(source, target, radius: int = 4):
    """The previous implementation: one elementwise product and channel sum per window offset."""
    import torch
    import torch.nn.functional as F
    height, width = source.shape[-2:]
    padded = F.pad(target, [radius] * 4)
    side = 2 * radius + 1
    out = source.new_empty(source.shape[0], side * side, height, width)
    for k in range(side * side):
        dy, dx = divmod(k, side)
        torch.sum(source * padded[:, :, dy:dy + height, dx:dx + width], dim=1, out=out[:, k])
    return out


def correlation_rows(threads: int, repeats: int = 30) -> list[str]:
    import torch
    import torch.nn.functional as F
    from rtn_core.model import local_correlation
    torch.set_num_threads(threads)
    rows = []
    for side in (16, 32):  # the stride-16 and stride-8 grids at 256 px, 128 channels
        source, target = (F.normalize(torch.randn(1, 128, side, side), dim=1) for _ in range(2))
        times = {}
        with torch.inference_mode():
            for name, function in (("per-offset loop", per_offset_correlation), ("matmul per row", local_correlation)):
                runs = []
                for _ in range(repeats):
                    start = time.process_time()
                    function(source, target)
                    runs.append((time.process_time() - start) * 1000)
                times[name] = statistics.median(runs)
        rows.append(f"correlation {side}x{side}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in times.items()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], bool(args.one[1]), bool(args.one[2]), args.threads)))
        return
    results: dict = {}
    for _ in range(args.rounds):
        for batch in args.batches:
            for keep, channels_last in LEVERS:
                command = [sys.executable, __file__, "--threads", str(args.threads),
                           "--one", str(batch), str(int(keep)), str(int(channels_last))]
                row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                results.setdefault((batch, keep, channels_last), []).append(row)
    print(f"{'batch':>5} {'keep freed':>10} {'channels_last':>13} {'CPU ms/pair':>11} {'faults/pair':>11}   "
          f"(median of {args.rounds} rounds, {args.threads} torch thread(s), 256 px)")
    for (batch, keep, channels_last), rows in results.items():
        print(f"{batch:>5} {str(keep):>10} {str(channels_last):>13} "
              f"{statistics.median(r['cpu_ms'] for r in rows):>11.1f} "
              f"{statistics.median(r['faults'] for r in rows):>11.0f}")
    print("\n".join(correlation_rows(args.threads)))


if __name__ == "__main__":
    main()

"""Benchmark label transfer over many targets: one process against several under torchrun
(wall time, images per second, their ratio, peak RSS of each process), checking that both
write the same export.

    python bench/bench_transfer.py [--images 40] [--processes 2] [--device cpu|cuda] [--size 320]

Targets are crops of the second sample photo (``--size`` px wide), the source is the first
sample with tests/data/labels/chelsea.csv. Wall time includes each process's start (torch
import, model load); images/s is the transfer loop alone as the command reports it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import cv2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "resources", "samples")
RANK_LINE = re.compile(r"\[rank (\d+)/\d+\] (\d+)/\d+ targets, ([\d.]+) images/s, peak RSS (\d+) MB")
TOTAL_LINE = re.compile(r"transfer: \d+ targets .* \(([\d.]+) images/s\)")


def write_targets(folder: str, count: int, width: int) -> None:
    photo = cv2.imread(os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
    height, full_width = photo.shape[:2]
    for i in range(count):
        x, y = (37 * i) % (full_width // 4), (23 * i) % (height // 4)
        crop = photo[y:y + 3 * height // 4, x:x + 3 * full_width // 4]
        size = (width, round(width * crop.shape[0] / crop.shape[1]))
        cv2.imwrite(os.path.join(folder, f"target{i:04d}.jpg"), cv2.resize(crop, size, interpolation=cv2.INTER_AREA))


def run(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, the process's peak RSS in MB, and its stderr."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        errors.seek(0)
        log = errors.read()
    if status:
        sys.exit(f"failed: {' '.join(command)}\n{log[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", type=int, default=320, help="target width in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        targets = os.path.join(folder, "targets")
        os.makedirs(targets)
        write_targets(targets, args.images, args.size)
        common = ["transfer", "--source", os.path.join(SAMPLES, "cat-chelsea.png"),
                  "--keypoints", os.path.join(REPO, "tests", "data", "labels", "chelsea.csv"),
                  "--targets", targets, "--format", "coco", "--device", args.device]
        main_py = os.path.join(REPO, "main.py")
        one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
        rows = []
        for name, env in (("1 process, default threads", dict(os.environ)), ("1 process, 1 thread", one_thread)):
            seconds, rss, _ = run([sys.executable, main_py, *common, "--out", os.path.join(folder, f"{len(rows)}.json")],
                                  env)
            rows.append(f"{name}: {seconds:.1f} s wall, {args.images / seconds:.2f} images/s, peak RSS {rss:.0f} MB")
        many_s, _, log = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={args.processes}", main_py, *common,
                           "--out", os.path.join(folder, "many.json")], one_thread)
        with open(os.path.join(folder, "1.json"), "rb") as one, open(os.path.join(folder, "many.json"), "rb") as many:
            same = one.read() == many.read()
    ranks = {int(m[0]): m for m in RANK_LINE.findall(log)}  # the last line of each rank
    loop_rate = float(TOTAL_LINE.search(log)[1])
    print(f"{args.images} targets of {args.size} px on {args.device}")
    print("\n".join(rows))
    print(f"{args.processes} processes, 1 thread each: {many_s:.1f} s wall, {args.images / many_s:.2f} images/s "
          f"({loop_rate:.2f} in the transfer loop, {args.processes / loop_rate:.2f} s an image in a process), "
          "peak RSS per rank " + ", ".join(f"{r}: {ranks[r][3]} MB" for r in sorted(ranks)))
    print(f"export identical to the 1-thread single process: {same}")


if __name__ == "__main__":
    main()

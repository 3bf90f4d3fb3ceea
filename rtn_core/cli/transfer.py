"""``main.py transfer``: read the command line, carry keypoints to many targets and export them."""
from __future__ import annotations

import os

from tqdm import tqdm

from .. import distributed
from ..images import load_image
from ..labels.formats import FORMATS, ExportOptions, check_export, read_source, write_labels
from ..labels.consistency import with_cycle_scores
from ..labels.keypoints import TransferSettings
from ..labels.project import read_fixes
from ..labels.sharded import transfer_sharded
from ..labels.transfer import add_fixes, expand_targets, summary, transfer_into
from ..matcher import Matcher


def add_arguments(parser) -> None:
    parser.add_argument("--source", required=True, help="the labelled source image")
    parser.add_argument("--keypoints", required=True, help="its keypoints: labelme / COCO JSON or CSV name,x,y")
    parser.add_argument("--targets", required=True, nargs="+", help="target images or folders of them")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="export format")
    parser.add_argument("--out", required=True, help="output file (a folder for labelme; for COCO a path "
                                                     "without .json is a datumaro-style dataset folder)")
    parser.add_argument("--image-root", help="name images relative to this folder (the one the labelling tool "
                                             "imports or serves images from; default: see docs/export-formats.md)")
    parser.add_argument("--image-url", help="Label Studio: image URL prefix (default /data/local-files/?d=)")
    defaults = TransferSettings()
    parser.add_argument("--min-confidence", type=float, default=defaults.min_confidence,
                        help=f"flag points below this confidence (default {defaults.min_confidence})")
    parser.add_argument("--max-fb-fraction", type=float, default=defaults.max_fb_fraction,
                        help="flag points whose forward-backward error exceeds this fraction of the "
                             f"source's longer side (default {defaults.max_fb_fraction})")
    parser.add_argument("--fixed", metavar="FILE", help="points fixed by hand on some targets, images matched by "
                        "file name: a label file in any import format (every point without a model score is a fix), "
                        "an RTN Studio project or export (its points placed by hand), or the main window's points "
                        "JSON (its matches placed by hand). They are kept and pull the other points along")
    parser.add_argument("--cycle", type=int, default=0, metavar="R", help="check each target's points through R "
                        "other targets (R extra matches a target) and join the cycle error into their confidence "
                        "(default 0: off; one process only)")
    parser.add_argument("--weights", help="RTN weights file (default: the shipped weights)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if present, else CPU")


def run(args) -> int:
    source_path = os.path.abspath(args.source)
    labels = read_source(args.keypoints, source_path, load_image(source_path).original_size)
    labels = labels.with_settings(TransferSettings(args.min_confidence, args.max_fb_fraction))
    targets = expand_targets(args.targets, source_path)
    if not targets:
        raise ValueError(f"no target images in {' '.join(args.targets)}")
    options = ExportOptions(args.image_root, args.image_url)
    check_export([source_path, *targets], args.out, args.format, options)  # before minutes of matching
    if args.fixed:
        labels = add_fixes(labels.add_targets(targets), read_fixes(args.fixed))
    if distributed.launched():  # started by torchrun: each process takes a share, rank 0 exports
        labels, matcher = transfer_sharded(labels, lambda: Matcher(weights=args.weights, device=args.device),
                                           targets, args.out, args.device)
        if labels is None:
            return 0
    else:
        matcher = Matcher(weights=args.weights, device=args.device)
        with tqdm(total=len(targets), unit="image", desc="transfer") as bar:
            labels = transfer_into(labels, matcher, targets, progress=lambda done, total, path: bar.update(1))
    labels = with_cycle_scores(labels, matcher, args.cycle)
    write_labels(labels.for_export(), args.out, args.format, options)
    print(summary(labels))
    print(f"wrote {args.format} to {args.out}")
    return 0

"""``main.py evaluate``: read the command line, measure PCK on a benchmark, print and save the report."""
from __future__ import annotations

import json
import os

from ..atomic import write_atomic
from ..matcher import Matcher
from ..training.evaluate import DATASETS, evaluate, format_report, load_pairs
from ..weights import file_hash


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="pf-willow")
    parser.add_argument("--root", required=True, help="the benchmark folder")
    parser.add_argument("--pairs", help="pf-pascal: the test CSV (default ROOT/test_pairs.csv); "
                        "spair: the pair-annotation folder (default ROOT/PairAnnotation/test)")
    parser.add_argument("--limit", type=int, help="only the first N pairs")
    parser.add_argument("--weights", help="RTN weights (default: the shipped weights; '' = untrained)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if present")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")


def run(args) -> int:
    pairs = load_pairs(args.dataset, args.root, args.pairs)
    if args.limit is not None:
        pairs = pairs[:max(args.limit, 0)]
    if not pairs:
        raise ValueError("no pairs to evaluate")
    matcher = Matcher(weights=args.weights, device=args.device)
    report = {"dataset": args.dataset,
              "weights": (f"{os.path.basename(matcher.weights)} (sha256 {file_hash(matcher.weights)})"
                          if matcher.weights else "untrained"),
              **evaluate(matcher, pairs)}
    print(format_report(report))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2))
    return 0

"""``main.py evaluate``: read the command line, measure PCK and the confidence on a benchmark,
print and save the report (JSON, reliability diagram PNG, fitted confidence calibration)."""
from __future__ import annotations

import json
import os

from ..atomic import write_atomic
from ..matcher import Matcher
from ..training.calibrate import write_reliability_png
from ..training.evaluate import DATASETS, VALIDATION, evaluate, format_report, load_pairs
from ..training.corrections import evaluate_fixed, format_fixed
from ..training.cycle_check import evaluate_cycle, format_cycle
from ..weights import file_hash


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="pf-willow")
    parser.add_argument("--root", required=True, help="the benchmark folder")
    parser.add_argument("--pairs", help="pf-pascal: the test CSV (default ROOT/test_pairs.csv); "
                        "spair: the pair-annotation folder (default ROOT/PairAnnotation/test)")
    parser.add_argument("--limit", type=int, help="only the first N pairs")
    parser.add_argument("--weights", help="RTN weights (default: the shipped weights; '' = untrained)")
    parser.add_argument("--input-size", type=int, help="square network input, px (default: the weights' "
                        "inference settings, else 256)")
    parser.add_argument("--schedule", help="strides of the recurrent updates, e.g. 16,8,8,8 (default: the model's)")
    parser.add_argument("--readout", type=float, metavar="W", help="semantic readout weight of the last field "
                        "(rtn_core.model.semantic_readout; 0 = off; default: the weights' inference settings)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if present")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON (and the reliability "
                        "diagram beside it, FILE with .png)")
    parser.add_argument("--reliability", metavar="PNG", help="write the reliability diagram here")
    parser.add_argument("--records", metavar="NPZ", help="also save every keypoint's errors and confidence "
                        "features (numpy .npz), to study the confidence without matching again")
    parser.add_argument("--fixed", type=int, metavar="K", help="instead: fix the k worst-scored keypoints of each "
                        "pair to the truth (k = 1..K) and print PCK of the OTHER keypoints with and without the fixes")
    parser.add_argument("--cycle", type=int, metavar="R", help="instead: AUROC of finding wrong points by the "
                        "confidence, by the cycle error over R other targets, and by both (image sets of the pairs)")
    parser.add_argument("--fit-confidence", metavar="FILE", help=f"{VALIDATION} only: fit the confidence "
                        "calibration on these pairs and write it with the schedule to FILE, the inference settings "
                        "(ship them beside the weights as <weights>.inference.json)")


def run(args) -> int:
    if args.fit_confidence and args.dataset != VALIDATION:
        raise ValueError(f"the confidence is fitted on the validation set ({VALIDATION}) only, not {args.dataset}")
    if args.input_size is not None and (args.input_size < 64 or args.input_size % 32):
        raise ValueError(f"--input-size {args.input_size}: use a multiple of 32, at least 64")
    pairs = load_pairs(args.dataset, args.root, args.pairs)
    if args.limit is not None:
        pairs = pairs[:max(args.limit, 0)]
    if not pairs:
        raise ValueError("no pairs to evaluate")
    matcher = Matcher(weights=args.weights, device=args.device, input_size=args.input_size)
    if args.schedule:
        matcher.model.schedule = parse_schedule(args.schedule, matcher.model.levels)
    if args.readout is not None:
        matcher.model.readout_weight = args.readout or None
    if args.fixed is not None or args.cycle is not None:
        return _study(args, matcher, pairs)
    report = {"dataset": args.dataset,
              "weights": (f"{os.path.basename(matcher.weights)} (sha256 {file_hash(matcher.weights)})"
                          if matcher.weights else "untrained"),
              "input_size": matcher.input_size, "schedule": list(matcher.model.schedule),
              "readout_weight": matcher.model.readout_weight,
              **evaluate(matcher, pairs, fit_confidence=bool(args.fit_confidence), save_records=args.records)}
    print(format_report(report))
    if args.fit_confidence:
        settings = {"weights": report["weights"], "input_size": report["input_size"], "schedule": report["schedule"],
                    "readout_weight": report["readout_weight"],
                    "confidence": {**report.pop("calibration"), "fitted_on": f"{args.dataset} ({report['pairs']} pairs)"}}
        write_atomic(args.fit_confidence, json.dumps(settings, indent=2))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2))
    png = args.reliability or (os.path.splitext(args.json)[0] + ".png" if args.json else None)
    if png:
        write_reliability_png(png, report["confidence"]["reliability"],
                              f"{args.dataset}: {report['confidence']['score']}, AUROC {report['confidence']['auroc']:.3f}")
        print(f"reliability diagram: {png}")
    return 0


def parse_schedule(text: str, levels) -> tuple[int, ...]:
    """"16,8,8" -> (16, 8, 8); every stride must be one of the model's levels."""
    try:
        schedule = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--schedule {text!r}: give strides separated by commas, e.g. 16,8,8,8") from None
    if not schedule or any(s not in levels for s in schedule):
        raise ValueError(f"--schedule {text!r}: strides must be among the model's levels {sorted(levels)}")
    return schedule


def _study(args, matcher, pairs) -> int:
    """``--fixed K`` (corrections) or ``--cycle R`` (cycle consistency): print the figures, save the JSON."""
    if (args.fixed if args.fixed is not None else args.cycle) < 1:
        raise ValueError("--fixed and --cycle take a number of at least 1")
    if args.fixed is not None:
        report = evaluate_fixed(matcher, pairs, args.fixed)
        print(format_fixed(report))
    else:
        report = evaluate_cycle(matcher, pairs, routes=args.cycle)
        print(format_cycle(report))
    if args.json:
        write_atomic(args.json, json.dumps({"dataset": args.dataset, **report}, indent=2))
    return 0

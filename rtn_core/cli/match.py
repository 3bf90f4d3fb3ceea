"""``main.py match``: match points between two images and print JSON."""
from __future__ import annotations

import json

import numpy as np

from ..images import load_image
from ..matcher import Matcher
from ..result import check_inside


def add_arguments(parser) -> None:
    parser.add_argument("source", help="source image")
    parser.add_argument("target", help="target image")
    parser.add_argument("--points", required=True, help='source points "x1,y1;x2,y2" in original pixels')
    parser.add_argument("--weights", help="RTN weights file (default: the shipped weights)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA if present, else CPU")
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--backbone-weights", help="torchvision-format weights for vgg19 / resnet101")


def parse_points(text: str) -> np.ndarray:
    """'x1,y1;x2,y2' -> (N, 2) array; ValueError naming the bad entry."""
    points = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        pieces = entry.split(",")
        try:
            if len(pieces) != 2:
                raise ValueError
            points.append([float(pieces[0]), float(pieces[1])])
        except ValueError:
            raise ValueError(f"bad point {entry!r}: expected x,y") from None
    if not points:
        raise ValueError("no points given: use --points \"x1,y1;x2,y2\"")
    return np.array(points)


def run(args) -> int:
    points = parse_points(args.points)
    source, target = load_image(args.source), load_image(args.target)
    check_inside(points, source.original_size)
    matcher = Matcher(weights=args.weights, backbone=args.backbone, device=args.device,
                      backbone_weights=args.backbone_weights)
    result = matcher.match(source, target)
    per_iteration = np.stack([result.map_points(points, k) for k in range(result.last + 1)], axis=1)
    matches = [{"source": [float(x), float(y)],
                "target": [round(float(v), 3) for v in per_iteration[i, -1]],
                "confidence": round(float(c), 4),
                "per_iteration": [[round(float(v), 3) for v in xy] for xy in per_iteration[i]]}
               for i, ((x, y), c) in enumerate(zip(points, result.confidence(points)))]
    print(json.dumps({"source": args.source, "target": args.target, "device": result.device,
                      "iterations": result.total_iterations, "matches": matches}, indent=2))
    return 0

"""RTN Studio entry point: the desktop app, or a command-line subcommand.

    python main.py                         open the app on the bundled sample pair
    python main.py SOURCE TARGET           open the app on a pair
    python main.py match SOURCE TARGET --points "x1,y1;x2,y2"
    python main.py train --config configs/...
    python main.py evaluate --dataset pf-willow --root ../shared/data/pf-willow
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module with add_arguments(parser) and run(args) -> exit code
SUBCOMMANDS = {
    "match": ("rtn_core.cli.match", "match points from a source image to a target and print JSON"),
    "train": ("rtn_core.cli.train", "train RTN (synthetic stage, then weakly supervised stage)"),
    "evaluate": ("rtn_core.cli.evaluate", "measure PCK on a benchmark"),
    "transfer": ("rtn_core.cli.transfer", "carry keypoints from a labelled source image to many targets and export them"),
}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module_name, help_text = SUBCOMMANDS[argv[0]]
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser(prog=f"main.py {argv[0]}", description=help_text)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        try:
            return module.run(args)
        except (ValueError, OSError) as exc:  # ImageError and WeightsError are ValueErrors
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return open_app(argv)


def open_app(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="main.py", description="RTN Studio: dense semantic correspondence with Recurrent Transformer "
        f"Networks. Subcommands: {', '.join(SUBCOMMANDS)} (main.py SUBCOMMAND --help).")
    parser.add_argument("source", nargs="?", help="source image (default: the bundled sample pair)")
    parser.add_argument("target", nargs="?", help="target image")
    parser.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window once matched, then exit")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="where the model runs (default: CUDA if present)")
    parser.add_argument("--weights", help="RTN weights file (default: the shipped weights)")
    args = parser.parse_args(argv)
    if bool(args.source) != bool(args.target):
        parser.error("give both SOURCE and TARGET, or neither")
    from app import platform_check  # imports no Qt
    if platform_check.main([]):  # no display, or a system library Qt's xcb plugin needs: one line, not Qt's abort
        return 1
    from app.main_window import launch
    return launch(source=args.source, target=args.target, screenshot=args.screenshot,
                  device=args.device, weights=args.weights)


if __name__ == "__main__":
    sys.exit(main())

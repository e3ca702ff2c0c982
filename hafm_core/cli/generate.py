"""`hafm generate --checkpoint CKPT --system S --input MANIFEST_OR_WAV --out DIR`.

For each excerpt (every record of a manifest, or one vocal wav) writes `DIR/<excerpt>.wav`
(the accompaniment, same length and rate as the vocal), `DIR/mix/<excerpt>.wav` (vocal +
accompaniment, peak-limited) and `DIR/<excerpt>.json` (system, checkpoint hash, seed, sampling
parameters, code version). An excerpt's seed is derived from `--seed` and its id, so it does
not depend on which other excerpts are generated with it. Cascade systems generate
`--batch-size` excerpts of equal length at once. Existing outputs are refused unless
`--overwrite`; every vocal is checked (truncated, NaN/Inf, silent, shorter than 0.5 s) before
anything is generated.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hafm_core import constants
from hafm_core.cli.args import (
    check_output_dir,
    nonnegative_float,
    open_unit_interval,
    positive_float,
    positive_int,
    refuse_existing,
    seed,
)

HELP = "generate accompaniments for vocals with one system (three-stage, two-stage, random, ground-truth...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", required=True,
                        choices=["three-stage", "two-stage", "random", "ground-truth", "ground-truth-raw"])
    parser.add_argument("--input", type=Path, required=True, metavar="MANIFEST_OR_WAV",
                        help="manifest.jsonl (or its folder), or one vocal wav")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs of earlier runs in DIR")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="CKPT",
                        help="cascade folder with ar_semantic/, ar_coarse/ (and ar_fine/)")
    parser.add_argument("--accompaniment", type=Path, default=None,
                        help="with a wav input: its real accompaniment (ground-truth systems)")
    parser.add_argument("--split", default=None, help="only the manifest's excerpts of this split")
    parser.add_argument("--limit", type=positive_int, default=None, help="at most this many excerpts")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--temperature", type=positive_float, default=None,
                        help="sampling temperature > 0 (for greedy decoding use --top-k 1)")
    parser.add_argument("--top-k", type=positive_int, default=None,
                        help="keep the k most likely tokens (k >= 1; a k at or above the vocabulary keeps all)")
    parser.add_argument("--top-p", type=open_unit_interval, default=None,
                        help="nucleus sampling mass in (0, 1] (1 keeps all)")
    parser.add_argument("--guidance", type=nonnegative_float, default=None,
                        help="classifier-free guidance scale >= 0 (1: none, 0: unconditional)")
    parser.add_argument("--window-s", type=positive_float, default=10.0,
                        help="generation window in seconds (long vocals)")
    parser.add_argument("--overlap-s", type=nonnegative_float, default=2.0,
                        help="overlap of consecutive windows in seconds, less than --window-s")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder (default: HAFM_WEIGHTS_DIR)")
    parser.add_argument("--device", default=None, help="torch device (default: HAFM_DEVICE, else cuda if present)")
    parser.add_argument("--dtype", default=constants.DEFAULT_MODEL_DTYPE, choices=constants.MODEL_DTYPES,
                        help="precision of the cascade's models (bfloat16 is about 3x faster at batch 16 on a "
                             "GPU; see the README)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _check_windows(window_s: float, overlap_s: float) -> None:
    """The window must hold at least one more token frame than the overlap, at 50 and 75 Hz."""
    from hafm_core.errors import ConfigError

    for rate in (constants.SEMANTIC_FRAME_RATE_HZ, constants.ACOUSTIC_FRAME_RATE_HZ):
        if int(overlap_s * rate) >= int(window_s * rate):
            raise ConfigError(f"--overlap-s {overlap_s:g} must be shorter than --window-s {window_s:g} "
                              f"by at least one token frame (1/{rate:g} s)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from hafm_core.config import torch_device
    from hafm_core.generation import Excerpt, excerpts_from_input, generate_all, output_paths
    from hafm_core.sampling import SamplingParams
    from hafm_core.systems import load_system

    _check_windows(args.window_s, args.overlap_s)
    check_output_dir(args.out)

    defaults = SamplingParams()
    params = dataclasses.replace(defaults, **{name: value for name, value in (
        ("temperature", args.temperature), ("top_k", args.top_k), ("top_p", args.top_p),
        ("guidance_scale", args.guidance)) if value is not None})
    excerpts: list[Excerpt] = excerpts_from_input(args.input, args.accompaniment, args.split, args.limit)
    replaced = refuse_existing([path for e in excerpts for path in output_paths(e, args.out)], args.overwrite,
                               f"hafm generate --out {args.out}")
    system = load_system(args.system, checkpoint=args.checkpoint,
                         random_pool=[str(e.accompaniment) for e in excerpts if e.accompaniment],
                         weights_dir=args.weights, device=args.device or torch_device(), params=params,
                         window_s=args.window_s, overlap_s=args.overlap_s, dtype=args.dtype)
    written = generate_all(system, excerpts, args.out, args.seed, args.checkpoint, params,
                           args.batch_size, progress=not args.json)
    if args.json:
        print(json.dumps({"system": args.system, "out": str(args.out), "n_excerpts": len(written),
                          "files": [str(p) for p in written], "replaced": [str(p) for p in replaced]}))
    else:
        if replaced:
            print(f"replaced {len(replaced)} file(s) of an earlier run in {args.out}")
        print(f"{args.system}: {len(written)} accompaniments -> {args.out}")
    return 0

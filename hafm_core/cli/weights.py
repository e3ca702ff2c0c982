"""`hafm weights tiny --out DIR`: write tiny random-init weights folders for tests and the demo.

The folder can then be used as `HAFM_WEIGHTS_DIR`: it holds `hubert-base-ls960/` and
`encodec_24khz/` (Hugging Face folders with the real rates, hops and codebooks but tiny widths)
and, unless `--no-kmeans`, a `kmeans.npy` of 500 centroids fitted on synthetic vocals.
These weights are random: tokens are well-formed, not meaningful.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hafm_core.cli.args import check_output_dir, refuse_existing, seed

HELP = "write tiny random-init HuBERT/EnCodec/k-means weights (tests and demo)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    tiny = sub.add_parser("tiny", help="tiny seeded random-init weights folders")
    tiny.add_argument("--out", type=Path, required=True, help="folder to write (use as HAFM_WEIGHTS_DIR)")
    tiny.add_argument("--overwrite", action="store_true",
                      help="replace hubert-base-ls960/, encodec_24khz/ or kmeans.npy already in --out")
    tiny.add_argument("--seed", type=seed, default=0)
    tiny.add_argument("--no-kmeans", action="store_true", help="skip fitting kmeans.npy")
    tiny.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from hafm_core.provenance import sha256_tree
    from hafm_core.tokens.tiny import ENCODEC_FOLDER, HUBERT_FOLDER, KMEANS_FILE, write_tiny_weights

    check_output_dir(args.out)
    targets = [args.out / HUBERT_FOLDER, args.out / ENCODEC_FOLDER]
    if not args.no_kmeans:
        targets += [args.out / KMEANS_FILE, args.out / KMEANS_FILE.replace(".npy", ".json")]
    replaced = refuse_existing(targets, args.overwrite, f"hafm weights tiny --out {args.out}")
    out = write_tiny_weights(args.out, seed=args.seed, kmeans=not args.no_kmeans)
    written = {name: sha256_tree(out / name) for name in (HUBERT_FOLDER, ENCODEC_FOLDER, KMEANS_FILE)
               if (out / name).exists()}
    if args.json:
        print(json.dumps({"weights_dir": str(out.resolve()), "seed": args.seed, "sha256": written,
                          "replaced": [str(p) for p in replaced]}))
    else:
        for path in replaced:
            print(f"replaced {path}")
        for name, digest in written.items():
            print(f"{out / name}  sha256 {digest[:16]}")
        print(f"export HAFM_WEIGHTS_DIR={out.resolve()}")
    return 0

"""`hafm tokenize MANIFEST --out DIR`: semantic ids and acoustic codes of every excerpt, cached.

Weights come from `--weights DIR` or `HAFM_WEIGHTS_DIR` (`hubert-base-ls960/`, `encodec_24khz/`,
`kmeans.npy`). `--fit-kmeans` first fits the k-means on the manifest's train split and writes
it to the weights folder's `kmeans.npy` (+ `kmeans.json` with its hash). Reruns skip excerpts
already in the cache. A cache whose index this run would not extend (tokens of other weights,
excerpts missing from this manifest) and an existing `kmeans.npy` with `--fit-kmeans` are
refused unless `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hafm_core.cli.args import (
    check_output_dir,
    int_at_least,
    nonnegative_int,
    positive_int,
    refuse_existing,
    seed,
)

HELP = "tokenize a manifest's excerpts (HuBERT 50 Hz ids, EnCodec 75 Hz codes) into a resumable cache"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="manifest.jsonl (or its folder)")
    parser.add_argument("--out", type=Path, required=True, help="token cache folder")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder (default: HAFM_WEIGHTS_DIR)")
    parser.add_argument("--fit-kmeans", action="store_true", help="fit kmeans.npy on the train split first")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an index of other weights or excerpts in --out, and kmeans.npy with --fit-kmeans")
    parser.add_argument("--n-clusters", type=int_at_least(2), default=500, help="k-means clusters (with --fit-kmeans)")
    parser.add_argument("--layer", type=nonnegative_int, default=9, help="HuBERT hidden layer")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--device", default=None, help="torch device (default: HAFM_DEVICE, else cuda if present)")
    parser.add_argument("--seed", type=seed, default=0, help="k-means seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: folders are loaded by path only
    from hafm_core.tokens.acoustic import AcousticTokenizer
    from hafm_core.tokens.pipeline import fit_kmeans_on_manifest, tokenize_manifest
    from hafm_core.tokens.semantic import SemanticTokenizer
    from hafm_core.weights import WEIGHTS, weights_dir, weights_path

    check_output_dir(args.out, what="token cache")
    root = args.weights or weights_dir()
    hubert = weights_path("hubert", root)
    encodec = weights_path("encodec", root)
    kmeans_path = root / WEIGHTS["kmeans"].relative_path
    fitted = None
    replaced = []
    if args.fit_kmeans:
        check_output_dir(root, what="weights folder")
        replaced = refuse_existing([kmeans_path], args.overwrite, "--fit-kmeans")
        features = SemanticTokenizer.load_hubert(hubert, layer=args.layer, device=args.device)
        fitted = fit_kmeans_on_manifest(args.manifest, features, kmeans_path, n_clusters=args.n_clusters,
                                        seed=args.seed, progress=not args.json)
    semantic = SemanticTokenizer.from_pretrained(hubert, weights_path("kmeans", root), layer=args.layer,
                                                 device=args.device)
    acoustic = AcousticTokenizer.from_pretrained(encodec, device=args.device)
    result = tokenize_manifest(args.manifest, args.out, semantic, acoustic, batch_size=args.batch_size,
                               progress=not args.json, overwrite=args.overwrite)
    summary = {"index": str(result.index_path), "n_excerpts": result.n_excerpts,
               "n_tokenized": result.n_tokenized, "n_skipped": result.n_skipped,
               "tokenizer_hash": result.tokenizer_hash, "kmeans": str(kmeans_path),
               "kmeans_sha256": fitted, "n_clusters": semantic.n_clusters, "layer": args.layer,
               "replaced": [f"{p} (k-means)" for p in replaced] + ([f"{result.index_path}: {result.replaced}"]
                                                                    if result.replaced else [])}
    if args.json:
        print(json.dumps(summary))
    else:
        for what in summary["replaced"]:
            print(f"replaced {what}")
        print(f"{result.n_tokenized} excerpts tokenized, {result.n_skipped} already cached -> {result.index_path}")
    return 0

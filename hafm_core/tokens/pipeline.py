"""Manifest excerpts -> cached tokens (`hafm tokenize`), and k-means fitting on the train split.

Per excerpt (24 kHz mono wavs from `hafm data prepare`):
1. audio cut to whole 40 ms units (`alignment.trim_to_units`; a no-op for prepared excerpts);
2. vocal and accompaniment resampled to 16 kHz (soxr) -> HuBERT ids, the vocal with noise
   sigma 0.01 seeded by the excerpt's content hash, the accompaniment without noise;
3. accompaniment at 24 kHz -> EnCodec codes [8, T_a];
4. checked: T_a == 3 T_s / 2, then written atomically to the cache.
Excerpts of equal length are batched. Files already in the cache are skipped (resumable);
one that cannot be read (a copy cut short) is tokenized again.

The vocal must be usable (`hafm_core.audio`): not truncated, finite, not silent, at least
`MIN_VOCAL_DURATION_S` long; the accompaniment may be silent. An existing cache whose index
lists excerpts this run would drop or tokens of other weights is refused unless `overwrite`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hafm_core import constants
from hafm_core.audio import MIN_VOCAL_DURATION_S, read_checked_audio, resample, samples_sha256
from hafm_core.data.manifest import ExcerptRecord, read_manifest
from hafm_core.errors import DatasetError, OutputPathError
from hafm_core.tokens import cache
from hafm_core.tokens.alignment import (
    ACOUSTIC_FRAMES_PER_UNIT,
    SEMANTIC_FRAMES_PER_UNIT,
    num_units,
    trim_to_units,
)

log = logging.getLogger(__name__)

RATE_24K = constants.ACOUSTIC_SAMPLE_RATE_HZ
RATE_16K = constants.SEMANTIC_SAMPLE_RATE_HZ


@dataclass(frozen=True)
class TokenizeResult:
    index_path: Path
    n_excerpts: int
    n_tokenized: int
    n_skipped: int  # already in the cache
    tokenizer_hash: str
    replaced: str | None = None  # what an `overwrite` replaced in the index


def noise_seed(record: ExcerptRecord) -> int:
    """The vocal-noise seed of an excerpt: the first 32 bits of its content hash."""
    return int(record.content_sha256[:8], 16)


def load_excerpt(record: ExcerptRecord, manifest_dir: Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(vocal, accompaniment): float32 [n] at 24 kHz, cut to whole 40 ms units."""
    pair = []
    for path, expected, what in ((record.vocal_file(manifest_dir), record.vocal_sha256, "vocal"),
                                 (record.accompaniment_file(manifest_dir), record.accompaniment_sha256,
                                  "accompaniment")):
        is_vocal = what == "vocal"
        samples, rate = read_checked_audio(path, what=what, allow_silent=not is_vocal,
                                           min_duration_s=MIN_VOCAL_DURATION_S if is_vocal else None,
                                           min_duration_reason="minimum for a vocal")
        if verify and samples_sha256(samples, rate) != expected:
            raise DatasetError(f"{path} changed since the manifest was written (sha256 mismatch); "
                               "rerun `hafm data prepare`")
        pair.append(resample(samples, rate, RATE_24K))
    length = min(len(pair[0]), len(pair[1]))
    return trim_to_units(pair[0][:length], RATE_24K), trim_to_units(pair[1][:length], RATE_24K)


def _to_16k(batch: np.ndarray) -> np.ndarray:
    return np.stack([resample(row, RATE_24K, RATE_16K) for row in batch])


def tokenize_batch(semantic, acoustic, vocals: np.ndarray, accompaniments: np.ndarray,
                   seeds: list[int]) -> list[cache.ExcerptTokens]:
    """vocals, accompaniments: float32 [B, n] at 24 kHz, n a multiple of 960 -> tokens per excerpt."""
    units = num_units(vocals.shape[-1], RATE_24K)
    semantic_vocal = semantic.encode(_to_16k(vocals), seed=seeds)  # (B, T_s)
    semantic_accompaniment = semantic.encode(_to_16k(accompaniments), noise_sigma=0.0)  # (B, T_s)
    codes = acoustic.encode(accompaniments)  # (B, 8, T_a)
    expected = (units * SEMANTIC_FRAMES_PER_UNIT, units * ACOUSTIC_FRAMES_PER_UNIT)
    if (semantic_vocal.shape[-1], codes.shape[-1]) != expected:
        raise RuntimeError(f"token lengths {(semantic_vocal.shape[-1], codes.shape[-1])} != {expected} "
                           f"for {vocals.shape[-1]} samples")
    return [cache.ExcerptTokens(semantic_vocal[i], semantic_accompaniment[i], codes[i])
            for i in range(len(seeds))]


def _batches(records: list[ExcerptRecord], manifest_dir: Path, batch_size: int
             ) -> Iterator[tuple[list[ExcerptRecord], np.ndarray, np.ndarray]]:
    """Equal-length batches: records are grouped by duration, read one batch at a time."""
    groups: dict[float, list[ExcerptRecord]] = defaultdict(list)
    for record in records:
        groups[record.duration_s].append(record)
    for group in groups.values():
        for first in range(0, len(group), batch_size):
            chunk = group[first:first + batch_size]
            pairs = [load_excerpt(r, manifest_dir) for r in chunk]
            length = min(len(v) for v, _ in pairs)
            yield (chunk, np.stack([v[:length] for v, _ in pairs]), np.stack([a[:length] for _, a in pairs]))


def _is_cached(path: Path) -> bool:
    """True when a token file is there and readable (a truncated one is redone)."""
    if not path.is_file():
        return False
    try:
        cache.load_tokens(path)
    except DatasetError as error:
        log.warning("%s; tokenizing it again", error)
        return False
    return True


def index_conflict(out_dir: Path, keys: dict[str, str]) -> str | None:
    """What writing an index of `keys` (excerpt id -> cache key) over `out_dir`'s would lose:
    None when the old index is absent or a subset of the new one (a resumed run)."""
    if not (out_dir / cache.INDEX_NAME).exists():
        return None
    old = cache.read_index(out_dir)
    other_weights = sum(1 for e in old if e.excerpt_id in keys and keys[e.excerpt_id] != e.key)
    dropped = sum(1 for e in old if e.excerpt_id not in keys)
    parts = []
    if other_weights:
        parts.append(f"{other_weights} excerpts tokenized with other weights (another tokenizer hash)")
    if dropped:
        parts.append(f"{dropped} excerpts that are not in this manifest")
    return f"an index of {len(old)} excerpts, " + " and ".join(parts) if parts else None


def tokenize_manifest(manifest_path: str | Path, out_dir: str | Path, semantic, acoustic,
                      batch_size: int = 8, progress: bool = False, overwrite: bool = False) -> TokenizeResult:
    """Tokenize every excerpt of a manifest into `out_dir/tokens/` and write `out_dir/tokens.jsonl`.

    An index in `out_dir` that this one would not extend (other weights, other excerpts) is an
    `OutputPathError` unless `overwrite`; then `TokenizeResult.replaced` says what it held.
    """
    from tqdm import tqdm

    manifest_path = Path(manifest_path)
    manifest_dir = manifest_path if manifest_path.is_dir() else manifest_path.parent
    records = read_manifest(manifest_path)
    out_dir = Path(out_dir)
    tok_hash = cache.tokenizer_hash(semantic.weights_hash, acoustic.weights_hash, constants.VOCAL_NOISE_SIGMA)
    keys = {r.excerpt_id: cache.cache_key(r.content_sha256, tok_hash) for r in records}
    try:
        replaced = index_conflict(out_dir, keys)
    except DatasetError:
        if not overwrite:
            raise
        replaced = "an unreadable index"
    if replaced and not overwrite:
        raise OutputPathError(f"token cache {out_dir} holds {replaced}; pass --overwrite to replace its "
                              "index or choose another --out")
    pending = [r for r in records if not _is_cached(cache.token_file(out_dir, keys[r.excerpt_id]))]
    with tqdm(total=len(records), initial=len(records) - len(pending), desc="tokenize", unit="excerpt",
              disable=not progress) as bar:
        for chunk, vocals, accompaniments in _batches(pending, manifest_dir, batch_size):
            tokens = tokenize_batch(semantic, acoustic, vocals, accompaniments, [noise_seed(r) for r in chunk])
            for record, excerpt_tokens in zip(chunk, tokens):
                cache.save_tokens(cache.token_file(out_dir, keys[record.excerpt_id]), excerpt_tokens)
            bar.update(len(chunk))
    entries = [cache.TokenIndexEntry(r.excerpt_id, r.track, r.split, r.duration_s, keys[r.excerpt_id],
                                     cache.token_file(out_dir, keys[r.excerpt_id]).relative_to(out_dir).as_posix())
               for r in records]
    index = cache.write_index(out_dir, entries)
    return TokenizeResult(index, len(records), len(pending), len(records) - len(pending), tok_hash, replaced)


def fit_kmeans_on_manifest(manifest_path: str | Path, semantic_features, out_path: str | Path,
                           n_clusters: int = constants.KMEANS_CLUSTERS, seed: int = 0,
                           split: str = "train", progress: bool = False) -> str:
    """Fit k-means on HuBERT features of the `split` excerpts (noised vocals and clean
    accompaniments) and save `out_path` (+ .json with its hash). Returns the sha256."""
    from tqdm import tqdm

    from hafm_core.tokens.semantic import fit_kmeans, save_kmeans

    manifest_path = Path(manifest_path)
    manifest_dir = manifest_path if manifest_path.is_dir() else manifest_path.parent
    records = [r for r in read_manifest(manifest_path) if r.split == split]
    if not records:
        raise DatasetError(f"{manifest_path} has no {split}-split excerpts to fit the k-means on")

    def features() -> Iterator[np.ndarray]:
        for record in tqdm(records, desc="k-means features", unit="excerpt", disable=not progress):
            vocal, accompaniment = load_excerpt(record, manifest_dir)
            yield semantic_features.features(_to_16k(vocal[None]), seed=noise_seed(record))[0]
            yield semantic_features.features(_to_16k(accompaniment[None]), noise_sigma=0.0)[0]

    centroids = fit_kmeans(features(), n_clusters=n_clusters, seed=seed)
    return save_kmeans(centroids, out_path, layer=semantic_features.layer, hubert_sha256=semantic_features.hubert_hash,
                       split=split, n_excerpts=len(records), seed=seed)

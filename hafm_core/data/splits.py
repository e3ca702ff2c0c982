"""Train / validation / test splits.

MUSDB18: the official `train` (100 tracks) and `test` (50 tracks) folders; `validation` is the
standard list of 14 train tracks that the `musdb` package and open-unmix hold out
(`VALIDATION_TRACKS`), so `train` here has 86 tracks.

Other sources without train/test folders (a stem folder, synthetic tracks) use
`assign_splits`: tracks sorted by name, the last `round(0.2 N)` go to `test` (at least one when
N >= 2) and the `round(0.1 N)` before them to `validation`; the rest is `train`.
"""

from __future__ import annotations

SPLITS = ("train", "validation", "test")

VALIDATION_TRACKS = frozenset({
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
})


def musdb_split(folder_split: str, track: str) -> str:
    """`train` tracks in the validation list become `validation`; `test` stays `test`."""
    if folder_split == "train" and track in VALIDATION_TRACKS:
        return "validation"
    return folder_split


def assign_splits(names: list[str]) -> dict[str, str]:
    ordered = sorted(names)
    n = len(ordered)
    n_test = max(1, round(0.2 * n)) if n >= 2 else 0
    n_validation = round(0.1 * n)
    splits = {}
    for index, name in enumerate(ordered):
        if index >= n - n_test:
            splits[name] = "test"
        elif index >= n - n_test - n_validation:
            splits[name] = "validation"
        else:
            splits[name] = "train"
    return splits

"""Datasets: tracks from MUSDB18, stem folders, the stempeg sample or synthetic fixtures, cut
into 10 s vocal-active excerpts, listed in a JSON Lines manifest.

- `sources`: discover tracks and their split in each kind of dataset.
- `excerpts`: choose excerpts where the vocal is active.
- `manifest`: the manifest records, read and written.
- `prepare`: sources -> excerpt wavs + manifest (`hafm data prepare`).
- `files`: atomic writes.
"""

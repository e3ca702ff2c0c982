"""Song sets drawn from Gaussians whose FAD is known exactly: the truth for simulations.

Every frame of a song is `mean + scale * (song_effect + frame_noise)` with
`song_effect ~ N(0, A)` shared by the song's frames and `frame_noise ~ N(0, B)`, so frames of
one song are correlated (as real embeddings are) while each frame is N(mean, scale^2 (A + B)).
The FAD between two such systems is then known in closed form. A candidate and a baseline
generating "the same song" share the song effect with correlation `pairing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg


@dataclass(frozen=True)
class World:
    dim: int = 8
    frames: int = 10  # per song
    song_share: float = 0.5  # fraction of each frame's variance that is the song's
    scale: float = 0.9  # generated systems' spread relative to the real one
    baseline_fad: float = 2.0  # true FAD of the baseline against the real distribution
    pairing: float = 0.7  # correlation of two systems' song effects for the same song

    @property
    def trace_term(self) -> float:
        """tr(S_r + S_s - 2 (S_r S_s)^1/2) for S_s = scale^2 S_r, S_r with unit trace per dim."""
        return self.dim * (1.0 - self.scale) ** 2

    def mean_for(self, fad: float) -> np.ndarray:
        """A mean vector giving a system the true FAD `fad` against the real distribution."""
        squared = fad - self.trace_term
        if squared < 0:
            raise ValueError(f"a FAD of {fad} is below this world's trace term {self.trace_term}")
        direction = np.ones(self.dim) / np.sqrt(self.dim)
        return np.sqrt(squared) * direction

    def true_fad(self, fad: float) -> float:
        """The FAD by the closed form (scipy sqrtm), as a check of `mean_for`."""
        cov_real = np.eye(self.dim)
        cov_system = self.scale ** 2 * np.eye(self.dim)
        mean = self.mean_for(fad)
        root = linalg.sqrtm(cov_real @ cov_system).real
        return float(mean @ mean + np.trace(cov_real + cov_system - 2 * root))


def _songs(rng, world: World, effects: np.ndarray, mean: np.ndarray, scale: float) -> list[np.ndarray]:
    noise_sd = np.sqrt(1.0 - world.song_share)
    return [mean + scale * (effect + noise_sd * rng.standard_normal((world.frames, world.dim)))
            for effect in effects]


def real_songs(rng, world: World, n_songs: int) -> list[np.ndarray]:
    effects = np.sqrt(world.song_share) * rng.standard_normal((n_songs, world.dim))
    return _songs(rng, world, effects, np.zeros(world.dim), 1.0)


def paired_systems(rng, world: World, n_songs: int, candidate_worse_by: float
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(candidate, baseline) songs; the candidate's true FAD is (1 + worse_by) x the baseline's."""
    shared = rng.standard_normal((n_songs, world.dim))
    own_c, own_b = rng.standard_normal((2, n_songs, world.dim))
    mix = np.sqrt(1 - world.pairing ** 2)
    sd = np.sqrt(world.song_share)
    effects_c = sd * (world.pairing * shared + mix * own_c)
    effects_b = sd * (world.pairing * shared + mix * own_b)
    fad_c = world.baseline_fad * (1.0 + candidate_worse_by)
    return (_songs(rng, world, effects_c, world.mean_for(fad_c), world.scale),
            _songs(rng, world, effects_b, world.mean_for(world.baseline_fad), world.scale))

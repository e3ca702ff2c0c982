"""Does the low band (kick and bass) carry the beat better than the full band? Paired AUC per
rhythm component and accompaniment onset envelope, on the rhythm claims of issue 16.

Hypothesis (round 3 of issue 16 item 1): the accompaniment's full-band onset envelope puts
beat-level energy off the beat (funk comping, pop syncopation), and the low band marks it.
Each variant replaces only the accompaniment's onset envelope (the vocal's stays full-band),
for the beat period, the xcorr contrast and the beat phase, everything else as `fit.rhythm`:

- full: librosa's spectral flux averaged over the 128 mel bands (round 2, `fit.rhythm`);
- low: mel bands centred below 200 Hz, the lowest band of Scheirer's (1998) six-band
  tempo analysis (7 mel bands at 22.05 kHz);
- low_weighted: the low band and the rest averaged with equal weight, as beat trackers
  weight low frequencies (the full band gives the low band 7/128);
- scheirer6: Scheirer's six bands (0-200-400-800-1600-3200 Hz-Nyquist) averaged with equal
  weight, each the mean flux of its mel bands (multi-band onset detection: Scheirer 1998,
  Klapuri 1999).

The beat period comes from the full band ("tempo full") or from the variant's own envelope.
Band edges are the published ones, set before looking at the data; nothing is fitted here.

    python benchmarks/fit_rhythm_bands.py [--songs 8]

No CREPE: only log-mel and RMS of the excerpts of `benchmarks/fit_validation.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LOW_BAND_HZ = 200.0
SCHEIRER_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, np.inf)


def band_envelopes(log_mel_pair: np.ndarray) -> dict[str, np.ndarray]:
    """`rhythm.log_mel` [2, 128, T] (vocal, accompaniment) -> {variant: envelopes float [2, T]},
    with the pair's dB floor of `rhythm.onset_envelopes`."""
    import librosa

    from hafm_core.fit import rhythm

    floored = np.maximum(log_mel_pair, log_mel_pair.max() - rhythm.TOP_DB)
    centres_hz = librosa.mel_frequencies(n_mels=floored.shape[-2] + 2, fmax=rhythm.ANALYSIS_RATE_HZ / 2)[1:-1]

    def flux(rows: np.ndarray) -> np.ndarray:
        return librosa.onset.onset_strength(S=floored[:, rows], sr=rhythm.ANALYSIS_RATE_HZ,
                                            hop_length=rhythm.HOP_SAMPLES)  # (2, T)

    low = centres_hz < LOW_BAND_HZ
    bands = [flux((centres_hz >= lo) & (centres_hz < hi)) for lo, hi in zip(SCHEIRER_EDGES_HZ, SCHEIRER_EDGES_HZ[1:])]
    return {"full": flux(np.ones_like(low)), "low": flux(low), "low_weighted": (flux(low) + flux(~low)) / 2,
            "scheirer6": np.mean(bands, axis=0)}


def components(log_mel_pair: np.ndarray, rms: np.ndarray) -> dict[str, float]:
    """{"<variant> tempo <full|own> <xcorr|phase|score>": value} of one excerpt; rms float [2, T]."""
    from hafm_core.fit import rhythm

    envelopes = band_envelopes(log_mel_pair)
    weights = rhythm.activity_weights(rms[0], rms[1])
    vocal = envelopes["full"][0]
    full_bpm, _ = rhythm.track_beats(envelopes["full"][1], weights)
    out = {}
    for variant, pair in envelopes.items():
        own_bpm, _ = rhythm.track_beats(pair[1], weights)
        for tempo, bpm in (("full", full_bpm), ("own", own_bpm)):
            if variant == "full" and tempo == "own":
                continue
            contrast = rhythm.onset_xcorr_contrast(vocal, pair[1], weights, 60.0 / bpm)
            phase = rhythm.beat_phase_agreement(vocal, pair[1], weights, 60.0 / bpm)
            key = f"{variant} tempo {tempo}"
            out |= {f"{key} xcorr": contrast, f"{key} phase": phase,
                    f"{key} score": 0.5 * float(np.clip(0.5 + 2 * contrast, 0, 1)) + 0.5 * (1 + phase) / 2}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8, help="synthetic songs (styles in turn; default 8)")
    args = parser.parse_args()

    import stempeg

    from hafm_core.audio import read_stems
    from hafm_core.fit import rhythm
    from hafm_core.fit.validation import RHYTHM_CAUGHT, paired_auc, real_windows, synthetic_songs

    stems, rate = read_stems(stempeg.example_stem_path(), sample_rate_hz=22_050)
    groups = {"real": real_windows(stems, rate, tempo_bpm=117.0),
              "synthetic": synthetic_songs(range(1000, 1000 + args.songs), duration_s=6.0)}
    tables = {}
    for source, cases in groups.items():
        cases = [c for c in cases if c.manipulation in ("true",) + RHYTHM_CAUGHT]
        values = {}
        for case in cases:
            pair = np.stack([case.excerpt.vocal, case.excerpt.accompaniment])  # (2, n), both at 22.05 kHz
            values[case.source, case.manipulation] = components(rhythm.log_mel(rhythm.spectrogram(pair)),
                                                                rhythm.frame_rms(pair))
        sources = sorted({c.source for c in cases})
        names = values[sources[0], "true"].keys()
        tables[source] = {name: [paired_auc([values[s, "true"][name] for s in sources],
                                            [values[s, kind][name] for s in sources]) for kind in RHYTHM_CAUGHT]
                          for name in names}
    width = max(len(n) for n in tables["real"]) + 2
    head = " ".join(f"{k[:6]:>6}" for k in RHYTHM_CAUGHT)
    print(f"paired AUC per rhythm claim, accompaniment envelope variants (vocal full-band)\n"
          f"{'':{width}}real: {head} | synthetic: {head} | below 0.8")
    for name in tables["real"]:
        real, synthetic = tables["real"][name], tables["synthetic"][name]
        print(f"{name:<{width}}      " + " ".join(f"{a:6.2f}" for a in real) + " |            "
              + " ".join(f"{a:6.2f}" for a in synthetic) + f" | {sum(a < 0.8 for a in real + synthetic):2d} of 12")
    return 0


if __name__ == "__main__":
    sys.exit(main())

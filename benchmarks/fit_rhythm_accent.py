"""Which vocal envelope and which alignment window tell a shifted or drifting accompaniment from
the truth? Paired AUC per rhythm claim of issue 16 (round 5), and a per-song diagnosis.

Round 4 left four rhythm claims failing: synthetic third_beat_late, half_beat_late_gap and
half_beat_early, real tempo_drift. Variants, each chosen for a prior reason, not fitted:

- local alignment (a misalignment that grows over the window, as a tempo drift, is averaged
  away by one phase for the whole window): the xcorr contrast and the beat phase computed in
  Hann-tapered windows of 2 beats, hop 1 beat, aggregated by their mean (weighted by their
  activity), their worst window, or their lower quartile;
- the vocal's onsets weighted by an accent instead of the flux envelope: by the inter-onset
  interval (durational accent: Povel & Essens, 1985; Parncutt, 1994: longer notes fall on
  strong beats, the accent saturates; capped at half a bar), by the note's loudness (dB above
  the vocal's loud level - 30 dB), by both, by the flux peak, or not at all (a count); each
  onset a Gaussian pulse of one frame; or a loudness flux (rectified rise of the frame RMS in
  dB) for the whole envelope. Each envelope replaces the vocal's in the phase, the xcorr, or
  both; the accompaniment's envelope is never changed;
- the accompaniment's beat as the tracker finds it (pulses at `rhythm.track_beats`' beats) in
  place of its envelope in the beat phase, against the vocal's flux or accent envelope (a
  syncopated accompaniment, as funk, moves its envelope's beat-level phase but not its beat).

The score is `fit.excerpt`'s rhythm_score formula. The last column is the worst change of the
score a late start (the accompaniment's first 0.26 s silenced, tests/fit/test_validation.py)
makes on the 7 real windows, which the test bounds at 0.15.

Diagnosis (`--diagnose`), per synthetic song: the beat-level (k = 1) evidence of its vocal,
from the score the generator renders (`songs._render_vocal`: note onsets counted, or weighted
by their inter-onset interval) and from the envelopes, as |c_1| / |c_2| and the phase of c_1
relative to the song's beat grid (0 deg: on the beat); the accompaniment's too; which claims
each song loses with the flux vocal envelope and with the durational accent.

Round 6 (`--metre`): the accompaniment's side of the beat phase as its metre, against the vocal's
durational accent (the round-5 beat phase): (a) a pulse train at its tracked beats
(`beat_pulses`), (b) the same pulses weighted by its flux envelope at each beat
(`weighted_beat_pulses`); and per window the tracked tempo and the tracked beats' phase against
the known grid (the real stem: the tracker on the whole 6 s accompaniment at 117 BPM; the
synthetic songs: the generator's), for the truth and both half-beat shifts.

    python benchmarks/fit_rhythm_accent.py [--songs 8] [--diagnose | --metre]

No CREPE: log-mel and RMS of the excerpts of `benchmarks/fit_validation.py` (about 2-3 min on one core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHIFTS = ("third_beat_late", "half_beat_late_gap", "half_beat_early", "tempo_drift")
NOT_PUNISHED = ("transpose_semitone", "transpose_tritone")
LOCAL_BEATS, LOCAL_HOP_BEATS = 2.0, 1.0
ACCENT_MODES = ("count", "ioi", "loud", "ioi*loud", "height", "height*ioi", "loudness_flux")


def features(cases) -> dict:
    """{(source, manipulation): dict(vocal_envelope, accompaniment_envelope, weights, bpm, vocal_rms)}."""
    from hafm_core.fit import rhythm

    out = {}
    for case in cases:
        pair = np.stack([case.excerpt.vocal, case.excerpt.accompaniment])  # (2, n) at 22.05 kHz
        envelopes = rhythm.onset_envelopes(rhythm.log_mel(rhythm.spectrogram(pair)))  # (2, T)
        rms = rhythm.frame_rms(pair)  # (2, T)
        weights = rhythm.activity_weights(rms[0], rms[1])
        bpm, _ = rhythm.track_beats(envelopes[1], weights)
        out[case.source, case.manipulation] = dict(vocal=envelopes[0], accompaniment=envelopes[1],
                                                   weights=weights, bpm=bpm, vocal_rms=rms[0])
    return out


def rhythm_score(contrast: float, phase: float) -> float:
    """As `hafm fit` combines them (default weights)."""
    from hafm_core.fit.excerpt import DEFAULT_CONFIG, combine_rhythm

    return combine_rhythm(contrast, phase, DEFAULT_CONFIG.rhythm_weights)


def accent_envelope(f: dict, mode: str) -> np.ndarray:
    """The vocal's onsets weighted by `mode` (module docstring), float64 [T]."""
    from scipy.ndimage import gaussian_filter1d

    from hafm_core.fit import rhythm

    w = f["weights"]
    n = len(w)
    db = 20 * np.log10(np.maximum(f["vocal_rms"][:n].astype(np.float64), 1e-9))
    if mode == "loudness_flux":
        db = np.maximum(db, np.percentile(db, 95) - 40)
        return np.maximum(0.0, np.diff(db, prepend=db[0]))
    if mode == "ioi":
        return rhythm.vocal_accent_envelope(f["vocal"], w, 60.0 / f["bpm"])
    v = f["vocal"][:n].astype(np.float64)
    frames = rhythm.picked_onsets(v, w, 0.0)
    pulses = np.zeros(n)
    if len(frames):
        ioi = np.minimum(np.diff(np.append(frames, n)) / (60.0 / f["bpm"] * rhythm.FRAME_RATE_HZ),
                         rhythm.ACCENT_MAX_IOI_BEATS)
        loud = np.array([np.clip((db[i:i + 5].max() - (np.percentile(db, 95) - 30)) / 30, 0, 1) for i in frames])
        pulses[frames] = {"count": np.ones(len(frames)), "loud": loud, "ioi*loud": ioi * loud, "height": v[frames],
                          "height*ioi": v[frames] * ioi}[mode]
    return gaussian_filter1d(pulses, rhythm.ACCENT_PULSE_FRAMES)


def beat_pulses(f: dict) -> np.ndarray:
    """The accompaniment's tracked beats (`rhythm.track_beats`) as Gaussian pulses of one frame, float64 [T]."""
    from scipy.ndimage import gaussian_filter1d

    from hafm_core.fit import rhythm

    _, beats_s = rhythm.track_beats(f["accompaniment"], f["weights"])
    pulses = np.zeros(len(f["weights"]))
    pulses[np.minimum(np.round(beats_s * rhythm.FRAME_RATE_HZ).astype(int), len(pulses) - 1)] = 1.0
    return gaussian_filter1d(pulses, rhythm.ACCENT_PULSE_FRAMES)


def local_components(f: dict, aggregate: str) -> tuple[float, float]:
    """(xcorr contrast, beat phase) over windows of LOCAL_BEATS, aggregated."""
    from scipy.signal.windows import hann

    from hafm_core.fit import rhythm

    w, period = f["weights"], 60.0 / f["bpm"]
    folded_bpm = f["bpm"] * 2.0 ** -np.floor(np.log2(f["bpm"] / rhythm.PHASE_MIN_TEMPO_BPM))
    beat_frames = 60.0 / folded_bpm * rhythm.FRAME_RATE_HZ
    n = len(w)
    length = min(n, int(round(LOCAL_BEATS * beat_frames)))
    hop = max(1, int(round(LOCAL_HOP_BEATS * beat_frames)))
    found = []  # (contrast, phase, activity)
    for start in range(0, n - length + 1, hop):
        local = np.zeros(n)
        local[start:start + length] = w[start:start + length] * hann(length + 2)[1:-1]
        if local.sum() >= 0.25 * length:  # not mostly edge or silence
            found.append((rhythm.onset_xcorr_contrast(f["vocal"], f["accompaniment"], local, period),
                          rhythm.beat_phase_agreement(f["vocal"], f["accompaniment"], local, period), local.sum()))
    if not found:
        return 0.0, 0.0
    contrast, phase, activity = map(np.array, zip(*found))
    if aggregate == "mean":
        return float((activity * contrast).sum() / activity.sum()), float((activity * phase).sum() / activity.sum())
    if aggregate == "worst":
        i = int(np.argmin([rhythm_score(c, p) for c, p in zip(contrast, phase)]))
        return float(contrast[i]), float(phase[i])
    return float(np.quantile(contrast, 0.25)), float(np.quantile(phase, 0.25))


def weighted_beat_pulses(f: dict) -> np.ndarray:
    """`beat_pulses`, each pulse weighted by the accompaniment's flux envelope at its beat, float64 [T]."""
    from scipy.ndimage import gaussian_filter1d

    from hafm_core.fit import rhythm

    _, beats_s = rhythm.track_beats(f["accompaniment"], f["weights"])
    pulses = np.zeros(len(f["weights"]))
    frames = np.minimum(np.round(beats_s * rhythm.FRAME_RATE_HZ).astype(int), len(pulses) - 1)
    pulses[frames] = f["accompaniment"][frames]
    return gaussian_filter1d(pulses, rhythm.ACCENT_PULSE_FRAMES)


def metre_scores(f: dict) -> dict[str, float]:
    """{variant: rhythm score} of one excerpt, round 6: the accompaniment's side of the beat phase."""
    from hafm_core.fit import rhythm

    period = 60.0 / f["bpm"]
    contrast = rhythm.onset_xcorr_contrast(f["vocal"], f["accompaniment"], f["weights"], period)
    accent = accent_envelope(f, "ioi")
    out = {}
    for name, accompaniment in (("accent vs flux envelope (round 5)", f["accompaniment"]),
                                ("(a) accent vs tracked beats", beat_pulses(f)),
                                ("(b) accent vs tracked beats x envelope", weighted_beat_pulses(f))):
        out[name] = rhythm_score(contrast, rhythm.beat_phase_agreement(accent, accompaniment, f["weights"], period))
    return out


def variant_scores(f: dict) -> dict[str, float]:
    """{variant: rhythm score} of one excerpt."""
    from hafm_core.fit import rhythm

    period = 60.0 / f["bpm"]
    contrast = rhythm.onset_xcorr_contrast(f["vocal"], f["accompaniment"], f["weights"], period)
    phase = rhythm.beat_phase_agreement(f["vocal"], f["accompaniment"], f["weights"], period)
    out = {"flux envelope (round 4)": rhythm_score(contrast, phase)}
    for aggregate in ("mean", "worst", "q25"):
        local_contrast, local_phase = local_components(f, aggregate)
        out[f"local {aggregate}: both"] = rhythm_score(local_contrast, local_phase)
        out[f"local {aggregate}: phase"] = rhythm_score(contrast, local_phase)
        out[f"local {aggregate}: xcorr"] = rhythm_score(local_contrast, phase)
    beats = beat_pulses(f)
    for name, vocal in (("flux", f["vocal"]), ("ioi", accent_envelope(f, "ioi"))):
        out[f"{name} vs tracked beats: phase"] = rhythm_score(
            contrast, rhythm.beat_phase_agreement(vocal, beats, f["weights"], period))
    for mode in ACCENT_MODES:
        vocal = accent_envelope(f, mode)
        accent_contrast = rhythm.onset_xcorr_contrast(vocal, f["accompaniment"], f["weights"], period)
        accent_phase = rhythm.beat_phase_agreement(vocal, f["accompaniment"], f["weights"], period)
        out[f"{mode}: both"] = rhythm_score(accent_contrast, accent_phase)
        out[f"{mode}: phase"] = rhythm_score(contrast, accent_phase)
        out[f"{mode}: xcorr"] = rhythm_score(accent_contrast, phase)
    return out


def auc_rows(scores: dict) -> None:
    """scores: {"real" | "synthetic": {(source, manipulation): `variant_scores`}}."""
    from hafm_core.fit.validation import RHYTHM_CAUGHT, paired_auc

    kinds = RHYTHM_CAUGHT + NOT_PUNISHED
    names = list(next(iter(scores["real"].values())))
    width = max(len(n) for n in names) + 2
    head = " ".join(f"{k[:6]:>6}" for k in kinds)
    print(f"paired AUC of the rhythm score per variant (last two columns of each source: transpositions, "
          f"not to be punished)\n{'':{width}}real: {head} | synthetic: {head} | claims < 0.8 | late start")
    for name in names:
        cells, failing = [], 0
        for values in scores.values():
            sources = sorted({s for s, _ in values})
            aucs = [paired_auc([values[s, "true"][name] for s in sources], [values[s, k][name] for s in sources])
                    for k in kinds]
            failing += sum(a < 0.8 for a, k in zip(aucs, kinds) if k in RHYTHM_CAUGHT)
            cells.append(" ".join(f"{a:6.2f}" for a in aucs))
        real = scores["real"]
        late = min(real[s, "late_start"][name] - real[s, "true"][name] for s, k in real if k == "true")
        print(f"{name:<{width}}      {cells[0]} |            {cells[1]} | {failing:2d} of 12     | {late:+.2f}")


def harmonic(envelope: np.ndarray, weights: np.ndarray, beat_s: float, k: int) -> complex:
    """Weighted Fourier coefficient of a mean-removed envelope at k / beat, phase 0 on the beat grid."""
    from hafm_core.fit import rhythm

    n = len(weights)
    x = envelope[:n].astype(np.float64)
    x = weights * (x - (weights * x).sum() / weights.sum())
    times_s = (np.arange(n) + 0.5) / rhythm.FRAME_RATE_HZ  # an onset peaks half a frame after its attack
    return complex(np.sum(x * np.exp(-2j * np.pi * k * times_s / beat_s)))


def score_notes(song) -> list[tuple[float, float]]:
    """(onset s, inter-onset interval s) of the vocal notes `songs._render_vocal` renders for `song`."""
    from hafm_core.fit import songs

    starts = []
    render_add = songs._add

    def record(track, signal, start):
        starts.append(start / song.sample_rate_hz)
        render_add(track, signal, start)

    songs._add = record
    try:
        songs._render_vocal(song, songs._chords(song, 64), 2, np.zeros(int(song.duration_s * song.sample_rate_hz)))
    finally:
        songs._add = render_add
    onsets = np.array(starts)
    return list(zip(onsets, np.diff(np.append(onsets, song.duration_s))))


def ratio_phase(c1: complex, c2: complex) -> str:
    return f"{abs(c1) / max(abs(c2), 1e-12):4.2f} {np.degrees(np.angle(c1)):+5.0f}"


def diagnose(found: dict, scores: dict, n_songs: int) -> None:
    from hafm_core.fit import rhythm, songs
    from hafm_core.fit.validation import RHYTHM_CAUGHT

    styles = ("pop", "ballad", "funk", "shuffle")
    print("per synthetic song: beat-level (k = 1) evidence as |c1|/|c2| and arg c1 (deg, 0 = on the beat); "
          "claims lost (manipulated >= true rhythm score)")
    print(f"{'song':<22} {'score count':>11} {'score ioi':>10} | {'env flux':>10} {'env ioi':>10} {'accomp':>10} "
          f"| lost, flux vocal envelope          | lost, durational accent")
    for k, seed in enumerate(range(1000, 1000 + n_songs)):
        song = songs.random_song(seed, styles[k % 4])
        source = f"synthetic:{song.style}:{seed}"
        beat_s = 60.0 / song.tempo_bpm
        notes = score_notes(song)
        onsets = np.array([t for t, _ in notes if rhythm.EDGE_S <= t <= song.duration_s - rhythm.EDGE_S])
        ioi = np.array([min(d / beat_s, rhythm.ACCENT_MAX_IOI_BEATS) for t, d in notes
                        if rhythm.EDGE_S <= t <= song.duration_s - rhythm.EDGE_S])
        cells = []
        for weights in (np.ones(len(onsets)), ioi):
            c = [np.sum(weights * np.exp(-2j * np.pi * h * onsets / beat_s)) for h in (1, 2)]
            cells.append(ratio_phase(*c))
        true = found[source, "true"]
        w = true["weights"]
        for envelope in (true["vocal"], rhythm.vocal_accent_envelope(true["vocal"], w, beat_s), true["accompaniment"]):
            cells.append(ratio_phase(harmonic(envelope, w, beat_s, 1), harmonic(envelope, w, beat_s, 2)))
        lost = []
        for mode in ("flux envelope (round 4)", "ioi: phase"):
            truth = scores[source, "true"][mode]
            lost.append(",".join(kind[:12] for kind in RHYTHM_CAUGHT if scores[source, kind][mode] >= truth) or "-")
        print(f"{source:<22} {cells[0]:>11} {cells[1]:>10} | {cells[2]:>10} {cells[3]:>10} {cells[4]:>10} "
              f"| {lost[0]:<34} | {lost[1]}")


def grid_offset_s(beats_s: np.ndarray, beat_s: float) -> float:
    """The circular mean of beat times modulo the beat period: where a grid of period beat_s sits, in seconds."""
    return float(np.angle(np.mean(np.exp(2j * np.pi * beats_s / beat_s))) / (2 * np.pi) * beat_s % beat_s)


def song_grid_s(stems: dict, rate: int, tempo_bpm: float) -> float:
    """Where the real stem's beat grid sits (s, modulo the beat): librosa's beat tracker on the whole
    6 s accompaniment at the known tempo (the drums alone give the same grid, within 1 ms)."""
    import librosa

    from hafm_core.fit import rhythm

    signal = stems["drums"] + stems["bass"] + stems["other"]
    envelope = librosa.onset.onset_strength(y=signal, sr=rate, hop_length=rhythm.HOP_SAMPLES)
    _, frames = librosa.beat.beat_track(onset_envelope=envelope, sr=rate, hop_length=rhythm.HOP_SAMPLES,
                                        bpm=tempo_bpm, trim=False)
    return grid_offset_s(frames * rhythm.HOP_SAMPLES / rate, 60.0 / tempo_bpm)


def grid_diagnosis(found: dict, scores: dict, grids: dict) -> None:
    """Per window (round 6): the accompaniment's tracked tempo and the phase of its tracked beats
    against the known grid (deg, 0 = on the beat, window time: a half-beat shift that the tracker
    follows reads 180), for the truth and the half-beat shifts; the beat-level (k = 1) phase of the
    accompaniment's flux and of the vocal's accent envelope against the grid; the rhythm score of the
    truth and the half-beat shifts under each variant of `metre_scores`.

    grids: {source: (tempo BPM, where the grid sits in the window, s)}."""
    from hafm_core.fit import rhythm

    kinds = ("true", "half_beat_late_gap", "half_beat_early")
    names = list(next(iter(scores.values())))
    print(f"{'window':<22} {'tracked':>7} {'beats vs grid: true/gap/early':>29} | {'k=1 deg: acc':>12} {'accent':>6} "
          f"| " + " | ".join(f"{n[:3]} true/gap/early" for n in names))
    for source, (tempo_bpm, offset_s) in grids.items():
        beat_s = 60.0 / tempo_bpm
        cells = []
        for kind in kinds:
            f = found[source, kind]
            bpm, beats_s = rhythm.track_beats(f["accompaniment"], f["weights"])
            phase = np.angle(np.mean(np.exp(2j * np.pi * (beats_s - offset_s) / beat_s))) if len(beats_s) else np.nan
            cells.append(f"{np.degrees(phase):+4.0f}")
            if kind == "true":
                tracked = bpm
        f = found[source, "true"]
        w = f["weights"]
        turn = np.exp(2j * np.pi * offset_s / beat_s)
        k1 = [np.degrees(np.angle(harmonic(e, w, beat_s, 1) * turn))
              for e in (f["accompaniment"], rhythm.vocal_accent_envelope(f["vocal"], w, beat_s))]
        score_cells = " | ".join(" ".join(f"{scores[source, k][n]:.2f}" for k in kinds).ljust(18) for n in names)
        print(f"{source:<22} {tracked:7.1f} {'/'.join(cells):>29} | {k1[0]:+12.0f} {k1[1]:+6.0f} | {score_cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8, help="synthetic songs (styles in turn; default 8)")
    parser.add_argument("--diagnose", action="store_true", help="also the per-song diagnosis")
    parser.add_argument("--metre", action="store_true",
                        help="round 6 only: the accompaniment's tracked beats in the beat phase, per-window diagnosis")
    args = parser.parse_args()

    import stempeg

    from hafm_core.audio import read_stems
    from hafm_core.fit import Excerpt
    from hafm_core.fit.validation import RHYTHM_CAUGHT, Case, real_windows, synthetic_songs

    keep = ("true",) + RHYTHM_CAUGHT + NOT_PUNISHED
    stems, rate = read_stems(stempeg.example_stem_path(), sample_rate_hz=22_050)
    real = [c for c in real_windows(stems, rate, tempo_bpm=117.0) if c.manipulation in keep]
    for case in [c for c in real if c.manipulation == "true"]:  # a late start, as tests/fit/test_validation.py
        late = case.excerpt.accompaniment.copy()
        late[:int(0.26 * rate)] = 0
        real.append(Case(case.source, "late_start", Excerpt(f"{case.source}/late", case.excerpt.vocal, late, rate)))
    synthetic = [c for c in synthetic_songs(range(1000, 1000 + args.songs), duration_s=6.0) if c.manipulation in keep]
    groups = {"real": features(real), "synthetic": features(synthetic)}
    measure = metre_scores if args.metre else variant_scores
    scores = {name: {key: measure(f) for key, f in found.items()} for name, found in groups.items()}
    auc_rows(scores)
    if args.metre:
        from hafm_core.fit import songs

        styles = ("pop", "ballad", "funk", "shuffle")
        grid_s = song_grid_s(stems, rate, 117.0)
        print(f"\nper window: the known grid; real stem at 117 BPM, from {grid_s:.3f} s (tracker on the whole 6 s); "
              f"synthetic: the generator's (beat 0 at 0 s)")
        grids = {s: (117.0, (grid_s - float(s.split(":")[1])) % (60.0 / 117.0))
                 for s in sorted({s for s, _ in groups["real"]}, key=lambda s: float(s.split(":")[1]))}
        for k, seed in enumerate(range(1000, 1000 + args.songs)):
            grids[f"synthetic:{styles[k % 4]}:{seed}"] = (songs.random_song(seed, styles[k % 4]).tempo_bpm, 0.0)
        grid_diagnosis({**groups["real"], **groups["synthetic"]}, {**scores["real"], **scores["synthetic"]}, grids)
    if args.diagnose:
        print()
        diagnose(groups["synthetic"], scores["synthetic"], args.songs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

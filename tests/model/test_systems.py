"""The five systems behind one interface, long vocals in windows, and `hafm generate`."""

import json

import numpy as np
import pytest
import torch

from hafm_core.audio import read_audio, write_audio
from hafm_core.checkpoint import checkpoint_path, save_checkpoint
from hafm_core.cli import main
from hafm_core.model import HafmLM, stage_config
from hafm_core.patterns import STAGES
from hafm_core.sampling import SamplingParams, generate
from hafm_core.synth import synthesize_multitrack
from hafm_core.systems import generate_windowed, load_system

RATE = 24_000


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    """Tiny tokenizer weights (random k-means of 500 centroids), a random-init tiny cascade, audio."""
    from hafm_core.tokens.tiny import write_tiny_weights

    root = tmp_path_factory.mktemp("cascade")
    weights = write_tiny_weights(root / "weights", seed=0)
    np.save(weights / "kmeans.npy", np.random.default_rng(0).standard_normal((500, 32)).astype(np.float32))
    torch.manual_seed(0)
    for stage in STAGES:
        config = stage_config(stage, "tiny")
        save_checkpoint(checkpoint_path(root / "ckpt", stage),
                        {"model_state": HafmLM(config).state_dict(), "config": config.to_dict(), "global_step": 0})
    files = {}
    for seed in (1, 2, 3):
        track = synthesize_multitrack(seed, 0.8, RATE)
        files[seed] = (write_audio(root / f"vocal{seed}.wav", track.stems["vocals"], RATE),
                       write_audio(root / f"acc{seed}.wav", track.accompaniment, RATE))
    return {"root": root, "weights": weights, "ckpt": root / "ckpt", "files": files}


def _system(cascade, name, **kwargs):
    pool = [str(acc) for _, acc in cascade["files"].values()]
    return load_system(name, checkpoint=cascade["ckpt"], random_pool=pool, weights_dir=cascade["weights"], **kwargs)


@pytest.mark.parametrize("name", ["three-stage", "two-stage", "random", "ground-truth", "ground-truth-raw"])
def test_every_system_returns_accompaniment_of_the_vocal_length(cascade, name):
    vocal_path, acc_path = cascade["files"][1]
    vocal, rate = read_audio(vocal_path)
    system = _system(cascade, name)
    out = system.generate(vocal, rate, seed=5, excerpt=acc_path)
    assert out.shape == vocal.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out, system.generate(vocal, rate, seed=5, excerpt=acc_path))  # seeded
    real = read_audio(acc_path)[0]
    if name == "ground-truth-raw":
        assert np.array_equal(out, real)
    if name == "random":
        others = [read_audio(a)[0] for s, (_, a) in cascade["files"].items() if s != 1]
        assert any(np.array_equal(out, o[: len(out)]) for o in others)
    if name == "ground-truth":
        tokenizer = system.acoustic_tokenizer
        round_trip = tokenizer.decode(tokenizer.encode(real[None]))[0][: len(real)]
        assert np.allclose(out, round_trip, atol=1e-6) and not np.array_equal(out, real)


def test_sixteen_khz_vocals_come_back_at_sixteen_khz(cascade):
    vocal = read_audio(cascade["files"][2][0], sample_rate_hz=16_000)[0]
    out = _system(cascade, "two-stage").generate(vocal, 16_000, seed=0)
    assert out.shape == vocal.shape


def test_two_stage_is_three_stage_without_the_fine_codebooks(cascade):
    vocals = np.stack([read_audio(cascade["files"][s][0])[0] for s in (1, 2)])
    three = _system(cascade, "three-stage").generate_codes(vocals, [7, 8])
    two = _system(cascade, "two-stage").generate_codes(vocals, [7, 8])
    assert three.shape == (2, 8, 60) and two.shape == (2, 4, 60)  # 0.8 s at 75 Hz
    assert torch.equal(three[:, :4], two)
    assert not torch.equal(three[0], three[1])
    alone = _system(cascade, "three-stage").generate_codes(vocals[1:], [8])
    assert torch.equal(alone[0], three[1])  # a seed reproduces its excerpt whatever the batch


def test_windows_continue_the_previous_windows_tokens():
    torch.manual_seed(0)
    model = HafmLM(stage_config("coarse", "tiny")).eval()
    cond = torch.randint(0, 500, (2, 2, 40))
    greedy = SamplingParams(temperature=0.0)
    short = generate_windowed(model, cond[:, :, :16], [1, 2], greedy, window_frames=16, overlap_frames=4)
    assert torch.equal(short, generate(model, cond[:, :, :16], 24, [1, 2], greedy))
    long = generate_windowed(model, cond, [1, 2], SamplingParams(), window_frames=16, overlap_frames=4)
    assert long.shape == (2, 4, 60)
    # Window 2 starts at conditioning frame 12 and keeps window 1's tokens over frames 12-15:
    # re-running window 2 with those tokens as its prompt, greedily, must keep them.
    second = generate(model, cond[:, :, 12:28], 24, [0, 0], greedy, prompt=long[:, :, 18:24])
    assert torch.equal(second[:, :, :6], long[:, :, 18:24])


def test_long_vocal_has_no_discontinuity_at_window_boundaries(cascade):
    vocal = synthesize_multitrack(4, 2.4, RATE).stems["vocals"]
    system = _system(cascade, "three-stage", window_s=0.8, overlap_s=0.2)
    out = system.generate(vocal, RATE, seed=3)
    assert out.shape == vocal.shape
    step = np.abs(np.diff(out))
    typical = np.quantile(step, 0.999)
    # Windows start every 0.6 s; the tokens of window w+1 take over after its 0.2 s overlap.
    for boundary_s in (0.8, 1.4, 2.0):
        around = step[int(boundary_s * RATE) - 480: int(boundary_s * RATE) + 480]
        assert around.max() <= 1.5 * typical, boundary_s


def test_cli_generate_writes_accompaniment_mix_and_sidecar(cascade, tmp_path, capsys):
    vocal_path, acc_path = cascade["files"][3]
    out = tmp_path / "out"
    code = main(["generate", "--system", "three-stage", "--checkpoint", str(cascade["ckpt"]),
                 "--input", str(vocal_path), "--out", str(out), "--weights", str(cascade["weights"]),
                 "--seed", "4", "--top-k", "50", "--device", "cpu", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_excerpts"] == 1
    vocal = read_audio(vocal_path)[0]
    accompaniment, rate = read_audio(out / "vocal3.wav")
    mix = read_audio(out / "mix" / "vocal3.wav")[0]
    assert rate == RATE and accompaniment.shape == vocal.shape
    expected_mix = vocal + accompaniment
    peak = np.abs(expected_mix).max()
    assert np.allclose(mix, expected_mix * (0.98 / peak if peak > 0.98 else 1.0), atol=1e-6)
    sidecar = json.loads((out / "vocal3.json").read_text())
    assert sidecar["system"] == "three-stage" and sidecar["sampling"]["top_k"] == 50
    assert sidecar["sampling"]["guidance_scale"] == 3.0 and len(sidecar["checkpoint_hash"]) == 64
    assert isinstance(sidecar["seed"], int) and sidecar["code_version"]
    # ground-truth-raw needs the real accompaniment; without a checkpoint the cascade is exit code 2.
    assert main(["generate", "--system", "ground-truth-raw", "--input", str(vocal_path), "--accompaniment",
                 str(acc_path), "--out", str(tmp_path / "gt")]) == 0
    assert np.array_equal(read_audio(tmp_path / "gt" / "vocal3.wav")[0], read_audio(acc_path)[0])
    assert main(["generate", "--system", "two-stage", "--input", str(vocal_path), "--out", str(tmp_path / "x"),
                 "--weights", str(cascade["weights"])]) == 2


def test_random_prefers_another_tracks_folder(tmp_path):
    track_a, track_b = tmp_path / "a", tmp_path / "b"
    for folder, value in ((track_a, 0.1), (track_b, 0.2)):
        for start in (0, 1):
            write_audio(folder / f"{start}.accompaniment.wav", np.full(2400, value, np.float32), RATE)
    system = load_system("random", random_pool=[str(p) for p in sorted(tmp_path.rglob("*.wav"))])
    for seed in range(5):
        out = system.generate(np.zeros(1200, np.float32), RATE, seed=seed, excerpt=track_a / "0.accompaniment.wav")
        assert np.allclose(out, 0.2)  # never the other excerpt of track a


def test_generate_names_outputs_without_the_vocal_suffix_and_records_tokenizers(cascade, tmp_path, capsys):
    vocal, _ = read_audio(cascade["files"][1][0])
    song = write_audio(tmp_path / "in" / "song.vocal.wav", vocal, RATE)
    out = tmp_path / "out"
    assert main(["generate", "--system", "two-stage", "--checkpoint", str(cascade["ckpt"]), "--input", str(song),
                 "--out", str(out), "--weights", str(cascade["weights"]), "--window-s", "0.4",
                 "--overlap-s", "0.2", "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.glob("*.wav")) == ["song.wav"]
    sidecar = json.loads((out / "song.json").read_text())
    assert (sidecar["window_s"], sidecar["overlap_s"]) == (0.4, 0.2)
    system = _system(cascade, "two-stage")
    assert sidecar["semantic_tokenizer_hash"] == system.semantic_tokenizer.weights_hash
    assert sidecar["acoustic_tokenizer_hash"] == system.acoustic_tokenizer.weights_hash
    assert sidecar["hubert_layer"] == 9 and len(sidecar["kmeans_sha256"]) == 64


def test_generate_never_writes_over_its_own_input(cascade, tmp_path, capsys):
    vocal, _ = read_audio(cascade["files"][1][0])
    song = write_audio(tmp_path / "song.wav", vocal, RATE)
    for extra in ([], ["--overwrite"]):  # refused as an existing output, and even when overwriting
        code = main(["generate", "--system", "ground-truth-raw", "--input", str(song), "--accompaniment",
                     str(cascade["files"][2][1]), "--out", str(tmp_path), *extra])
        assert code == 2
    assert "would replace the vocal" in capsys.readouterr().err
    assert np.array_equal(read_audio(song)[0], vocal)


def test_generate_in_bfloat16_records_its_dtype(cascade, tmp_path, capsys):
    vocal, _ = read_audio(cascade["files"][1][0])
    song = write_audio(tmp_path / "in" / "song.wav", vocal, RATE)
    out = tmp_path / "out"
    assert main(["generate", "--system", "two-stage", "--checkpoint", str(cascade["ckpt"]), "--input", str(song),
                 "--out", str(out), "--weights", str(cascade["weights"]), "--device", "cpu", "--dtype", "bfloat16",
                 "--json"]) == 0
    capsys.readouterr()
    assert json.loads((out / "song.json").read_text())["dtype"] == "bfloat16"
    accompaniment, _ = read_audio(out / "song.wav")
    assert accompaniment.shape == vocal.shape and np.isfinite(accompaniment).all()
    system = _system(cascade, "two-stage", dtype="bfloat16")
    assert all(next(m.parameters()).dtype == torch.bfloat16 for m in system.models.values())

"""Every `hafm` command x every class of bad input: exit 2, one line on stderr, no traceback,
no new or changed files.

The matrix is built from the parser itself: every leaf command (`data prepare`, `benchmark
export`, ...) must have a base command line here, every numeric option must use a validating
type from `hafm_core.cli.args` with bad values listed here, every output option must have an
output case, and every command with `--device` gets the device cases. A new command or option
that skips the rules fails these tests until it is covered.

Commands run in-process through `hafm_core.cli.main` (fast); a few run as real subprocesses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hafm_core import cli
from hafm_core.audio import samples_sha256, write_audio
from hafm_core.cli.args import can_write_in

ROOT = Path(__file__).resolve().parents[2]
RATE_HZ = 24_000


# ---------------------------------------------------------------- the parser, walked

def leaf_parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """(command, action...) -> parser of every runnable leaf of `hafm`."""
    leaves = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            leaves[path] = parser
            return
        for name, child in subs[0].choices.items():
            walk(child, path + (name,))

    walk(cli.build_parser(), ())
    return leaves


LEAVES = leaf_parsers()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings or a.dest not in ("help",)]


# A minimal command line that parses, per leaf; X is a placeholder path under tmp_path.
BASE = {
    ("analyze",): ["X"],
    ("benchmark", "cancel"): ["RUN"],
    ("benchmark", "export"): ["RUN", "--out", "X"],
    ("benchmark", "rerun"): ["X"],
    ("benchmark", "resume"): ["RUN"],
    ("benchmark", "run"): ["--checkpoint", "X", "--dataset", "sample"],
    ("benchmark", "status"): ["RUN"],
    ("data", "prepare"): ["--synthetic", "1", "--out", "X"],
    ("doctor",): [],
    ("fad",): ["X", "X"],
    ("fit",): ["X", "X"],
    ("generate",): ["--system", "random", "--input", "X", "--out", "X"],
    ("regress",): ["--candidate", "X", "--baseline", "X", "--background", "X"],
    ("tokenize",): ["X", "--out", "X"],
    ("train",): ["--stage", "semantic", "--tokens", "X", "--out", "X"],
    ("weights", "tiny"): ["--out", "X"],
}

# Bad values per validating type (by the type's name in hafm_core.cli.args).
BAD_VALUES = {
    "positive_int": ["0", "-3", "2.5", "x"],
    "nonnegative_int": ["-1", "x"],
    "seed": ["-1", str(2**32), "x"],
    "positive_float": ["0", "-1", "nan", "inf", "x"],
    "nonnegative_float": ["-0.5", "nan", "-inf"],
    "finite_float": ["nan", "inf"],
    "unit_interval": ["-0.1", "2", "nan"],
    "open_unit_interval": ["0", "1.01", "nan"],
    "probability_open": ["0", "1", "nan"],
}


def bad_values(type_name: str) -> list[str]:
    if type_name in BAD_VALUES:
        return BAD_VALUES[type_name]
    if type_name.startswith("int_at_least_"):
        minimum = int(type_name.rsplit("_", 1)[1])
        return [str(minimum - 1), "nan", "x"]
    if type_name.startswith("float_at_least_"):
        minimum = float(type_name.rsplit("_", 1)[1])
        return [repr(minimum / 2), "nan", "-1"]
    raise AssertionError(f"no bad values listed for argument type {type_name}: add them to BAD_VALUES")


def numeric_cases():
    for path, parser in sorted(LEAVES.items()):
        for action in parser._actions:
            name = getattr(action.type, "__name__", None)
            if action.type is None or action.type in (Path, str) or not action.option_strings:
                continue
            yield pytest.param(path, action.option_strings[-1], bad_values(name),
                               id=f"{' '.join(path)} {action.option_strings[-1]}")


# ---------------------------------------------------------------- running and checking

def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 (files) or 'dir': what a failed command must leave unchanged."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        state[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def shown_lines(err: str) -> list[str]:
    """The stderr lines a terminal ends up showing: a progress bar redraws itself with '\r'
    and is cleared when it closes, so only what follows the last '\r' of a line remains."""
    return [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.rsplit("\r", 1)[-1].strip()]


def assert_one_line_error(code, err: str, *needles: str) -> None:
    assert code == 2, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err, err
    lines = shown_lines(err)
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{err}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def expect_refusal(argv: list[str], root: Path, capsys, *needles: str) -> str:
    """Run, assert the error contract and that nothing under `root` appeared or changed."""
    before = snapshot(root)
    code, _, err = run_main(argv, capsys)
    assert_one_line_error(code, err, *needles)
    assert snapshot(root) == before, "a failed command created or changed files"
    return err


def with_x(argv: list[str], tmp_path: Path) -> list[str]:
    return [str(tmp_path / "placeholder") if word == "X" else word for word in argv]


# ---------------------------------------------------------------- the parser is covered

def test_every_leaf_command_has_a_base_command_line():
    assert set(LEAVES) == set(BASE), "add the new command to BASE (and to the output/device cases)"


def test_every_numeric_option_uses_a_validating_type():
    raw = [f"{' '.join(path)} {a.option_strings}" for path, parser in LEAVES.items() for a in parser._actions
           if a.type in (int, float)]
    assert raw == [], f"use a range-checking type from hafm_core.cli.args for: {raw}"


# ---------------------------------------------------------------- numeric options

@pytest.mark.parametrize("path,option,values", list(numeric_cases()))
def test_bad_numeric_value_is_one_line_exit_2(path, option, values, tmp_path, capsys):
    for value in values:
        # OPTION=VALUE: argparse would read a bare "-inf" as an unknown option, not as a value
        argv = [*path, *with_x(BASE[path], tmp_path), f"{option}={value}"]
        expect_refusal(argv, tmp_path, capsys, option, value)


@pytest.mark.parametrize("argv,needle", [
    (["generate", "--system", "random", "--input", "X", "--out", "X", "--window-s", "4", "--overlap-s", "4"],
     "--overlap-s"),
    (["generate", "--system", "random", "--input", "X", "--out", "X", "--window-s", "2", "--overlap-s", "3"],
     "--overlap-s"),
    (["generate", "--system", "random", "--input", "X", "--out", "X", "--window-s", "0.01"], "--window-s"),
    (["train", "--stage", "semantic", "--tokens", "X", "--out", "X", "--batch-size", "5", "--accumulate", "2"],
     "--accumulate"),
    (["regress", "--candidate", "X", "--baseline", "X", "--background", "X", "--max-relative-increase", "nan"],
     "--max-relative-increase"),
], ids=["overlap=window", "overlap>window", "window<frame", "batch%accumulate", "regress-nan-margin"])
def test_inconsistent_options_are_one_line_exit_2(argv, needle, tmp_path, capsys):
    expect_refusal(with_x(argv, tmp_path), tmp_path, capsys, needle)


# ---------------------------------------------------------------- devices

DEVICE_LEAVES = sorted(path for path, parser in LEAVES.items()
                       if any("--device" in a.option_strings for a in parser._actions))


def test_device_commands_are_the_expected_ones():
    assert DEVICE_LEAVES == [("fad",), ("fit",), ("generate",), ("regress",), ("tokenize",), ("train",)]


@pytest.mark.parametrize("path", DEVICE_LEAVES, ids=" ".join)
@pytest.mark.parametrize("how", ["--device tpu", "--device cuda:7", "HAFM_DEVICE=tpu", "HAFM_DEVICE=cuda:9"])
def test_unusable_device_is_one_line_exit_2(path, how, tmp_path, capsys, monkeypatch):
    import torch

    if "cuda" in how and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that many GPUs")
    argv = [*path, *with_x(BASE[path], tmp_path)]
    name, _, value = how.partition("=") if "=" in how else how.partition(" ")
    if name == "HAFM_DEVICE":
        monkeypatch.setenv("HAFM_DEVICE", value)
        needle = "HAFM_DEVICE"
    else:
        argv += [name, value]
        needle = "--device"
    expect_refusal(argv, tmp_path, capsys, needle, value)


def test_device_cuda_without_a_gpu_is_one_line_exit_2(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    for path in DEVICE_LEAVES:
        argv = [*path, *with_x(BASE[path], tmp_path), "--device", "cuda"]
        expect_refusal(argv, tmp_path, capsys, "no CUDA GPU")


# ---------------------------------------------------------------- output paths

def _vocal(duration_s: float = 3.0, seed: int = 0) -> np.ndarray:
    """A sung-like tone with vibrato and breath noise, float32 [n] at 24 kHz."""
    t = np.arange(int(duration_s * RATE_HZ)) / RATE_HZ
    rng = np.random.default_rng(seed)
    pitch = 220.0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / RATE_HZ) + 0.1 * np.sin(4 * np.pi * np.cumsum(pitch) / RATE_HZ)
    return (tone + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _output_setup(path: tuple[str, ...], tmp_path: Path) -> tuple[list[str], str, str]:
    """(argv without the output option, output option, 'dir' or 'file') for a leaf that writes."""
    inputs = tmp_path / "inputs"
    inputs.mkdir(exist_ok=True)
    vocal = inputs / "song.wav"
    if not vocal.exists():
        write_audio(vocal, _vocal(), RATE_HZ)
    table = {
        ("data", "prepare"): (["data", "prepare", "--synthetic", "1"], "--out", "dir"),
        ("weights", "tiny"): (["weights", "tiny"], "--out", "dir"),
        ("tokenize",): (["tokenize", str(inputs / "manifest.jsonl")], "--out", "dir"),
        ("train",): (["train", "--stage", "semantic", "--tokens", str(inputs)], "--out", "dir"),
        ("generate",): (["generate", "--system", "random", "--input", str(vocal)], "--out", "dir"),
        ("fit",): (["fit", str(inputs), str(inputs)], "--csv", "file"),
        ("analyze",): (["analyze", str(inputs / "preferences.csv")], "--html", "file"),
        ("benchmark", "export"): (["benchmark", "export", "RUN"], "--out", "dir"),
    }
    return table[path]


OUTPUT_LEAVES = [("analyze",), ("benchmark", "export"), ("data", "prepare"), ("fit",), ("generate",),
                 ("tokenize",), ("train",), ("weights", "tiny")]

# What an earlier run left in the output, which a rerun without --overwrite must not touch.
EXISTING = {
    ("data", "prepare"): ["manifest.jsonl", "audio/train/t/0000000ms.vocal.wav"],
    ("weights", "tiny"): ["hubert-base-ls960/config.json"],
    ("train",): ["ar_semantic/ckpt_last.pt", "ar_semantic/log.jsonl"],
    ("generate",): ["song.wav", "song.json"],
    ("benchmark", "export"): ["run.json"],
}


def test_every_output_option_has_output_cases():
    writers = sorted(path for path, parser in LEAVES.items()
                     if any(a.dest in ("out", "csv", "html") for a in parser._actions))
    assert writers == OUTPUT_LEAVES


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    """A folder this process cannot create files in (as root, a read-only system folder)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not can_write_in(folder):
        yield folder
    else:  # root ignores permission bits
        system = Path("/sys/kernel")
        if not system.is_dir() or can_write_in(system):
            pytest.skip("no folder this user cannot write to")
        yield system
    folder.chmod(0o755)


@pytest.mark.parametrize("path", OUTPUT_LEAVES, ids=" ".join)
@pytest.mark.parametrize("kind", ["wrong kind", "under a file", "unwritable", "exists"])
def test_bad_output_path_is_refused_before_any_work(path, kind, tmp_path, capsys, unwritable_dir):
    argv, option, shape = _output_setup(path, tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    if kind == "wrong kind":
        out = blocker if shape == "dir" else tmp_path
        needle = "is a file" if shape == "dir" else "is a folder"
    elif kind == "under a file":
        out, needle = blocker / "sub" / ("out" if shape == "dir" else "out.csv"), "is a file"
    elif kind == "unwritable":
        out, needle = unwritable_dir / "sub" / ("out" if shape == "dir" else "out.csv"), "not writable"
    else:
        if path == ("tokenize",):
            pytest.skip("an existing token cache is refused only when it holds other tokens: see below")
        out = tmp_path / ("out" if shape == "dir" else "out.csv")
        if shape == "file":
            out.write_text("earlier results\n")
        for rel in EXISTING.get(path, []):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text("earlier output\n")
        needle = "--overwrite"
    expect_refusal([*argv, option, str(out)], tmp_path, capsys, str(out), needle)


def test_unwritable_cache_dir_is_one_line_exit_2(tmp_path, capsys, monkeypatch, unwritable_dir):
    monkeypatch.setenv("HAFM_CACHE_DIR", str(unwritable_dir / "cache"))
    for argv in (["fad", "X", "X", "--embedder", "logmel"], ["fit", "X", "X"],
                 ["regress", "--candidate", "X", "--baseline", "X", "--background", "X", "--embedder", "logmel"]):
        expect_refusal(with_x(argv, tmp_path), tmp_path, capsys, "HAFM_CACHE_DIR", "writable")


# ---------------------------------------------------------------- bad audio

AUDIO_CLASSES = ["nan", "inf", "silent", "short", "truncated"]


def write_bad_audio(path: Path, kind: str, duration_s: float = 3.0) -> Path:
    """A wav broken in one way; `truncated` keeps the header of a longer file."""
    samples = _vocal(duration_s)
    if kind == "nan":
        samples[1000:1010] = np.nan
    elif kind == "inf":
        samples[500] = np.inf
    elif kind == "silent":
        samples[:] = 0.0
    elif kind == "short":
        samples = samples[: int(0.05 * RATE_HZ)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, samples, RATE_HZ)
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


AUDIO_NEEDLES = {"nan": "NaN", "inf": "Inf", "silent": "silent", "short": "shorter than",
                 "truncated": "truncated"}


@pytest.mark.parametrize("kind", AUDIO_CLASSES)
def test_generate_refuses_a_bad_vocal(kind, tmp_path, capsys):
    vocal = write_bad_audio(tmp_path / "in" / "vocal.wav", kind)
    accompaniment = tmp_path / "in" / "accompaniment.wav"
    write_audio(accompaniment, _vocal(seed=1), RATE_HZ)
    argv = ["generate", "--system", "ground-truth-raw", "--input", str(vocal), "--accompaniment",
            str(accompaniment), "--out", str(tmp_path / "out"), "--json"]
    expect_refusal(argv, tmp_path, capsys, "vocal.wav", AUDIO_NEEDLES[kind])


@pytest.mark.parametrize("kind", AUDIO_CLASSES)
def test_data_prepare_refuses_bad_vocal_stems(kind, tmp_path, capsys):
    track = tmp_path / "stems" / "track"
    write_bad_audio(track / "vocals.wav", kind)
    for seed, name in enumerate(("drums", "bass", "other"), start=1):
        write_audio(track / f"{name}.wav", _vocal(seed=seed), RATE_HZ)
    argv = ["data", "prepare", "--stems", str(tmp_path / "stems"), "--excerpt-s", "1", "--out",
            str(tmp_path / "data"), "--json"]
    expect_refusal(argv, tmp_path, capsys, "vocals", AUDIO_NEEDLES[kind])


def _fad_folders(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    background, evaluation = tmp_path / "background", tmp_path / "eval"
    for index in range(3):
        write_audio(background / f"s{index}.wav", _vocal(seed=10 + index), RATE_HZ)
        write_audio(evaluation / f"s{index}.wav", _vocal(seed=20 + index), RATE_HZ)
    write_bad_audio(evaluation / "s1.wav", kind)
    return background, evaluation


@pytest.mark.parametrize("kind", ["nan", "inf", "silent", "truncated"])
def test_fad_and_regress_refuse_bad_audio_with_exit_2_never_1(kind, tmp_path, capsys):
    background, evaluation = _fad_folders(tmp_path, kind)
    expect_refusal(["fad", str(background), str(evaluation), "--embedder", "logmel", "--no-cache", "--json"],
                   tmp_path, capsys, "s1.wav", AUDIO_NEEDLES[kind])
    expect_refusal(["regress", "--candidate", str(evaluation), "--baseline", str(background), "--background",
                    str(background), "--embedder", "logmel", "--no-cache", "--resamples", "100", "--json"],
                   tmp_path, capsys, "s1.wav", AUDIO_NEEDLES[kind])


@pytest.mark.parametrize("kind", AUDIO_CLASSES)
def test_fit_gives_a_bad_pair_a_documented_status(kind, tmp_path, capsys):
    vocals, accompaniments = tmp_path / "vocals", tmp_path / "accompaniments"
    write_bad_audio(vocals / "bad.wav", kind)
    write_audio(accompaniments / "bad.wav", _vocal(seed=3), RATE_HZ)
    code, out, err = run_main(["fit", str(vocals), str(accompaniments), "--json"], capsys)
    assert code == 1 and "Traceback" not in err  # 1: no excerpt could be measured (documented)
    [result] = json.loads(out)["results"]
    assert result["status"] != "ok"
    if kind == "truncated":
        assert result["status"] == "unreadable" and "truncated" in result["detail"]


# ---------------------------------------------------------------- weights, tokens, manifests

@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    from hafm_core.tokens.tiny import write_tiny_weights

    return write_tiny_weights(tmp_path_factory.mktemp("matrix-weights"), seed=0, kmeans=True)


def _copy_weights(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def _manifest(folder: Path, vocal: Path, accompaniment: Path, **overrides) -> Path:
    """A one-record manifest whose hashes match the files (so only the audio itself is at fault)."""
    from hafm_core.audio import read_audio
    from hafm_core.provenance import sha256_bytes

    hashes = []
    for path in (vocal, accompaniment):
        try:
            samples, rate = read_audio(path)
            hashes.append(samples_sha256(samples, rate))
        except Exception:  # noqa: BLE001 - unreadable on purpose: any hash will do
            hashes.append("0" * 64)
    record = {"excerpt_id": "song@0000000ms", "track": "song", "split": "train", "source": "stems",
              "start_s": 0.0, "duration_s": 3.0, "sample_rate_hz": RATE_HZ,
              "vocal_path": os.path.relpath(vocal, folder), "accompaniment_path": os.path.relpath(accompaniment, folder),
              "vocal_sha256": hashes[0], "accompaniment_sha256": hashes[1],
              "content_sha256": sha256_bytes(f"{hashes[0]}:{hashes[1]}".encode()), "vocal_active_fraction": 1.0,
              **overrides}
    path = folder / "manifest.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize("kind", AUDIO_CLASSES)
def test_tokenize_refuses_a_bad_vocal(kind, tmp_path, capsys, tiny_weights):
    data = tmp_path / "data"
    vocal = write_bad_audio(data / "vocal.wav", kind)
    accompaniment = data / "accompaniment.wav"
    write_audio(accompaniment, _vocal(seed=1), RATE_HZ)
    manifest = _manifest(data, vocal, accompaniment)
    expect_refusal(["tokenize", str(manifest), "--out", str(tmp_path / "tok"), "--weights", str(tiny_weights),
                    "--json"], tmp_path, capsys, "vocal", AUDIO_NEEDLES[kind])


@pytest.mark.parametrize("field,value,needle", [
    ("duration_s", "3.0", "'duration_s'"),
    ("sample_rate_hz", 24000.5, "'sample_rate_hz'"),
    ("vocal_path", 7, "'vocal_path'"),
    ("split", None, "'split'"),
    ("start_s", True, "'start_s'"),
])
def test_manifest_with_wrong_field_types_is_named(field, value, needle, tmp_path, capsys, tiny_weights):
    data = tmp_path / "data"
    vocal, accompaniment = data / "vocal.wav", data / "accompaniment.wav"
    write_audio(vocal, _vocal(), RATE_HZ)
    write_audio(accompaniment, _vocal(seed=1), RATE_HZ)
    manifest = _manifest(data, vocal, accompaniment, **{field: value})
    for argv in (["tokenize", str(manifest), "--out", str(tmp_path / "tok"), "--weights", str(tiny_weights)],
                 ["generate", "--system", "ground-truth-raw", "--input", str(manifest), "--out", str(tmp_path / "g")]):
        expect_refusal(argv, tmp_path, capsys, "manifest.jsonl:1", needle)


def test_manifest_bad_line_is_named(tmp_path, capsys):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"excerpt_id": "a"\n')
    expect_refusal(["generate", "--system", "ground-truth-raw", "--input", str(manifest), "--out",
                    str(tmp_path / "g")], tmp_path, capsys, "manifest.jsonl:1", "not JSON")


@pytest.mark.parametrize("target", ["encodec_24khz/model.safetensors", "hubert-base-ls960/model.safetensors",
                                    "kmeans.npy"])
def test_truncated_weights_are_named(target, tmp_path, capsys, tiny_weights):
    weights = _copy_weights(tiny_weights, tmp_path / "weights")
    data = (weights / target).read_bytes()
    (weights / target).write_bytes(data[: len(data) // 2])
    data_dir = tmp_path / "data"
    write_audio(data_dir / "vocal.wav", _vocal(), RATE_HZ)
    write_audio(data_dir / "accompaniment.wav", _vocal(seed=1), RATE_HZ)
    manifest = _manifest(data_dir, data_dir / "vocal.wav", data_dir / "accompaniment.wav")
    for argv in (["tokenize", str(manifest), "--out", str(tmp_path / "tok"), "--weights", str(weights)],
                 ["generate", "--system", "ground-truth", "--input", str(manifest), "--weights", str(weights),
                  "--out", str(tmp_path / "g")]):
        expect_refusal(argv, tmp_path, capsys, str(weights / target.split("/")[0]), "truncated")


@pytest.fixture(scope="module")
def token_cache(tmp_path_factory, tiny_weights) -> Path:
    """A real token cache of two synthetic tracks (2 s excerpts)."""
    from hafm_core.data.prepare import PrepareConfig, prepare_dataset
    from hafm_core.data.sources import synthetic_tracks

    root = tmp_path_factory.mktemp("matrix-tokens")
    prepare_dataset(synthetic_tracks(2, 4.2, "train"), root / "data", PrepareConfig(excerpt_s=2.0))
    assert cli.main(["tokenize", str(root / "data"), "--out", str(root / "tok"), "--weights", str(tiny_weights),
                     "--json"]) == 0
    return root


@pytest.mark.parametrize("damage,needle", [
    ("truncate a token file", "unreadable or incomplete"),
    ("bad index line", "tokens.jsonl:2: not JSON"),
    ("index line of wrong schema", "tokens.jsonl:1: record lacks"),
    ("index field of wrong type", "tokens.jsonl:1: field 'duration_s'"),
])
def test_damaged_token_cache_is_named_by_train(damage, needle, tmp_path, capsys, token_cache):
    import shutil

    tok = shutil.copytree(token_cache / "tok", tmp_path / "tok")
    index = tok / "tokens.jsonl"
    lines = index.read_text().splitlines()
    if damage == "truncate a token file":
        victim = tok / json.loads(lines[0])["file"]
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "bad index line":
        index.write_text(lines[0] + "\n{oops\n")
    elif damage == "index line of wrong schema":
        index.write_text(json.dumps({"excerpt": "x"}) + "\n")
    else:
        index.write_text(json.dumps({**json.loads(lines[0]), "duration_s": "2"}) + "\n")
    expect_refusal(["train", "--stage", "semantic", "--tokens", str(tok), "--out", str(tmp_path / "ckpt"),
                    "--steps", "1", "--json"], tmp_path, capsys, needle)


def test_tokenize_into_a_cache_of_other_weights_is_refused(tmp_path, capsys, token_cache, tiny_weights):
    """A second tokenize with other k-means would switch the index silently; it is refused, and
    with --overwrite it says what it replaced."""
    import shutil

    tok = shutil.copytree(token_cache / "tok", tmp_path / "tok")
    other = _copy_weights(tiny_weights, tmp_path / "other-weights")
    from hafm_core.tokens.semantic import save_kmeans

    centroids = np.load(other / "kmeans.npy")
    meta = json.loads((other / "kmeans.json").read_text())
    save_kmeans(centroids[::-1].copy(), other / "kmeans.npy",  # other centroids, consistently recorded
                **{k: v for k, v in meta.items() if k not in ("sha256", "n_clusters", "dim")})
    argv = ["tokenize", str(token_cache / "data"), "--out", str(tok), "--weights", str(other), "--json"]
    expect_refusal(argv, tmp_path, capsys, str(tok), "other weights", "--overwrite")
    code, out, _ = run_main([*argv, "--overwrite"], capsys)
    assert code == 0 and "other weights" in json.loads(out)["replaced"][0]


# ---------------------------------------------------------------- overwrite, said and atomic

def test_failed_data_prepare_leaves_the_old_folder_intact(tmp_path, capsys):
    out = tmp_path / "data"
    assert cli.main(["data", "prepare", "--synthetic", "1", "--synthetic-duration-s", "4.2", "--excerpt-s", "2",
                     "--out", str(out), "--json"]) == 0
    before = snapshot(out)
    stems = tmp_path / "stems"
    for index, vocal_kind in enumerate(("good", "truncated")):  # the second track fails half-way
        track = stems / f"t{index}"
        if vocal_kind == "good":
            write_audio(track / "vocals.wav", _vocal(), RATE_HZ)
        else:
            write_bad_audio(track / "vocals.wav", "truncated")
        for seed, name in enumerate(("drums", "bass", "other"), start=1):
            write_audio(track / f"{name}.wav", _vocal(seed=seed), RATE_HZ)
    code, _, err = run_main(["data", "prepare", "--stems", str(stems), "--split", "train", "--excerpt-s", "1",
                             "--out", str(out), "--overwrite", "--json"], capsys)
    assert_one_line_error(code, err, "truncated")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "stems"]  # no staging folder left


def test_data_prepare_overwrite_replaces_the_folder_as_a_whole_and_says_so(tmp_path, capsys):
    out = tmp_path / "data"
    base = ["data", "prepare", "--synthetic-duration-s", "4.2", "--excerpt-s", "2", "--out", str(out)]
    assert cli.main([*base, "--synthetic", "2", "--json"]) == 0
    stale = out / "audio" / "stale.wav"
    stale.write_bytes(b"left over")
    code, out_text, _ = run_main([*base, "--synthetic", "1", "--overwrite"], capsys)
    assert code == 0 and f"replaced {out}" in out_text and "manifest of" in out_text
    assert not stale.exists()


def test_train_without_resume_refuses_existing_checkpoints(tmp_path, capsys, token_cache):
    ckpt = tmp_path / "ckpt"
    argv = ["train", "--stage", "semantic", "--tokens", str(token_cache / "tok"), "--out", str(ckpt),
            "--steps", "2", "--eval-every", "1", "--batch-size", "2", "--json"]
    assert run_main(argv, capsys)[0] == 0
    expect_refusal(argv, tmp_path, capsys, "ckpt_best.pt", "--overwrite")
    code, out, _ = run_main([*argv, "--overwrite"], capsys)
    assert code == 0 and any(p.endswith("ckpt_last.pt") for p in json.loads(out)["replaced"])
    assert (ckpt / "ar_semantic" / "log.previous.jsonl").is_file()


def test_generate_refuses_to_overwrite_and_says_what_it_replaced(tmp_path, capsys):
    vocal, accompaniment = tmp_path / "in" / "song.wav", tmp_path / "in" / "acc.wav"
    write_audio(vocal, _vocal(), RATE_HZ)
    write_audio(accompaniment, _vocal(seed=2), RATE_HZ)
    argv = ["generate", "--system", "ground-truth-raw", "--input", str(vocal), "--accompaniment", str(accompaniment),
            "--out", str(tmp_path / "out"), "--json"]
    assert run_main(argv, capsys)[0] == 0
    expect_refusal(argv, tmp_path, capsys, "song.wav", "--overwrite")
    code, out, _ = run_main([*argv, "--overwrite"], capsys)
    assert code == 0 and len(json.loads(out)["replaced"]) == 3


# ---------------------------------------------------------------- as a real process

@pytest.mark.parametrize("argv,env,needle", [
    (["train", "--stage", "semantic", "--tokens", "X", "--out", "X", "--lr", "nan"], {}, "--lr"),
    (["tokenize", "X", "--out", "X"], {"HAFM_DEVICE": "tpu"}, "HAFM_DEVICE"),
    (["generate", "--system", "ground-truth-raw", "--input", "TRUNCATED", "--out", "X"], {}, "truncated"),
], ids=["nan-lr", "tpu", "truncated-vocal"])
def test_as_a_subprocess(argv, env, needle, tmp_path):
    truncated = write_bad_audio(tmp_path / "vocal.wav", "truncated")
    argv = [str(truncated) if word == "TRUNCATED" else word for word in with_x(argv, tmp_path)]
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", "hafm_core", *argv], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=300)
    assert_one_line_error(result.returncode, result.stderr, needle)
    assert snapshot(tmp_path) == before

"""Concurrent fits from an empty compiled-code cache: no crash, no poisoned cache (issue 18, item 7).

Each process compiles librosa's numba functions into its own folder; the first to finish
publishes a copy atomically; later processes start from a copy of it and never write to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIT_ONE = """
import json, os
import numpy as np
from hafm_core.fit import fit_excerpt
from hafm_core.synth import synthesize_multitrack
private = os.environ["NUMBA_CACHE_DIR"]
seeded = sum(1 for _ in __import__("pathlib").Path(private).rglob("*.nbi"))
track = synthesize_multitrack(3, 4.0, 16_000)
result = fit_excerpt(track.stems["vocals"], track.accompaniment, 16_000)
print(json.dumps({"private": private, "seeded": seeded, "status": result.status,
                  "fit_score": result.fit_score}))
"""


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_fits(n: int, env: dict) -> list[dict]:
    processes = [subprocess.Popen([sys.executable, "-c", FIT_ONE], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outputs = [p.communicate(timeout=900) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-2000:]  # a poisoned cache segfaults: -11 / 139
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.mark.timeout(1800)  # three cold processes compile librosa (about 1 min on a quiet machine)
def test_concurrent_fits_from_an_empty_cache_then_a_later_fit(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "HAFM_NUMBA_CACHE_ROOT")}
    env["HAFM_CACHE_DIR"] = str(tmp_path / "cache")
    first = run_fits(2, env)
    assert len({r["private"] for r in first}) == 2  # each process has its own compiled code
    assert all(r["status"] == "ok" and r["seeded"] == 0 for r in first)
    assert first[0]["fit_score"] == first[1]["fit_score"]
    (versioned,) = (tmp_path / "cache" / "numba").iterdir()
    published = versioned / "published"
    before = snapshot(published)
    assert any(name.endswith(".nbi") for name in before)

    (later,) = run_fits(1, env)  # starts from the published cache: nothing to compile
    assert later["status"] == "ok" and later["fit_score"] == first[0]["fit_score"]
    assert later["seeded"] > 0
    assert snapshot(published) == before  # never written after publication
    assert not any((versioned / "proc").iterdir())  # private folders go with their process

"""`hafm doctor` tells the truth about weights, services and devices."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def doctor(*args, **env):
    import os

    return subprocess.run([sys.executable, "-m", "hafm_core", "doctor", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_missing_weights_folder_is_reported_with_sources(tmp_path):
    missing_dir = tmp_path / "no-such-weights"
    result = doctor("--json", HAFM_WEIGHTS_DIR=str(missing_dir))
    assert result.returncode == 1, result.stderr  # a failed check: weights are missing
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {"weights:hubert", "weights:encodec", "weights:kmeans", "weights:vggish"} <= set(report["missing"])
    weights = report["weights"]
    assert weights["dir"] == str(missing_dir) and weights["dir_exists"] is False
    by_key = {entry["key"]: entry for entry in weights["models"]}
    for key in ("hubert", "encodec", "kmeans", "vggish"):
        assert by_key[key]["present"] is False
        assert by_key[key]["source"]
    assert "facebook/hubert-base-ls960" in by_key["hubert"]["source"]
    assert "vggish-10086976.pth" in by_key["vggish"]["missing"]


def test_partial_model_folder_names_the_missing_file(tmp_path):
    hubert = tmp_path / "hubert-base-ls960"
    hubert.mkdir()
    (hubert / "config.json").write_text("{}")
    (tmp_path / "vggish-10086976.pth").write_bytes(b"\0")
    result = doctor(HAFM_WEIGHTS_DIR=str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "hubert: missing model.safetensors or pytorch_model.bin" in result.stdout
    assert "missing: " in result.stdout and "weights:hubert" in result.stdout
    assert "ok vggish" in result.stdout


def test_reports_versions_devices_and_unreachable_services(tmp_path):
    result = doctor("--json", "--timeout", "10",  # a closed port answers at once; a busy box is slow to import
                    DATABASE_URL="postgres://postgres@127.0.0.1:1/nothing",
                    CELERY_BROKER_URL=f"sqla+sqlite:///{tmp_path}/broker.sqlite3")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["missing"][0] == "database"
    assert report["versions"]["torch"] and report["versions"]["django"].startswith("5.2")
    assert report["devices"]["cpu_count"] >= 1
    assert report["database"]["ok"] is False and "127.0.0.1" in report["database"]["detail"]
    assert report["broker"]["ok"] is True


def test_reachable_production_services(postgres_url, redis_url, rabbitmq_url):
    for broker in (redis_url, rabbitmq_url):
        report = json.loads(doctor("--json", DATABASE_URL=postgres_url, CELERY_BROKER_URL=broker).stdout)
        assert report["database"]["ok"], report["database"]
        assert report["database"]["detail"].startswith("PostgreSQL")
        assert report["broker"]["ok"], report["broker"]


def test_exit_0_only_when_services_answer_and_every_weight_is_present(tmp_path, postgres_url, redis_url):
    """All weights present (written by the tiny writer, VGGish and CREPE files in place) and both
    services up: exit 0; the broker stopped (a closed port): exit 1, the JSON says which."""
    from hafm_core.tokens.tiny import write_tiny_weights
    from hafm_core.weights import WEIGHTS, weights_status

    root = write_tiny_weights(tmp_path / "weights", seed=0, kmeans=True)
    for key in WEIGHTS:
        for name in weights_status(key, root)["missing"]:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(b"\0")
    assert all(weights_status(key, root)["present"] for key in WEIGHTS)
    env = {"HAFM_WEIGHTS_DIR": str(root), "DATABASE_URL": postgres_url}
    healthy = doctor("--json", CELERY_BROKER_URL=redis_url, **env)
    report = json.loads(healthy.stdout)
    assert healthy.returncode == 0 and report["ok"] is True and report["missing"] == [], report["missing"]
    down = doctor("--json", "--timeout", "1", CELERY_BROKER_URL="redis://:s3cret@127.0.0.1:1/0", **env)
    report = json.loads(down.stdout)
    assert down.returncode == 1 and report["missing"] == ["broker"]
    assert report["broker"]["url"] == "redis://:***@127.0.0.1:1/0" and "s3cret" not in down.stdout

"""Listening study under load: 200 concurrent simulated listeners against gunicorn + PostgreSQL.

Claim (issue 8): the next-trial and submit endpoints stay fast under 200 concurrent
listeners, and not one judgment is lost or recorded twice. Side by side in one run: the same
endpoints with a single listener (unloaded), so the load factor is printed as a ratio.

    python benchmarks/listening_load.py [--listeners 200] [--trials 6] [--duration-s 60]
        [--database-url postgres://postgres@127.0.0.1:5432/hafm_listening_load] [--workers 4]

Creates (and drops at the end) its own PostgreSQL database, renders a small study from
synthetic clips, starts gunicorn on 127.0.0.1, then each listener consents, does the practice
trial and answers trials through the JSON API (next -> play both sides -> submit) until the
study says it is done or the time bound is hit. One listener in ten re-sends each answer
(a double click): the server must refuse the copy with 409. At the end the database is
checked against what the clients saw: every 200-acknowledged answer is stored (zero lost),
no trial is answered twice and no item is past its quota (zero double-recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Listener:
    """One browser: a keep-alive connection, a cookie jar, and timings per endpoint."""

    def __init__(self, port: int, timings: dict, lock: threading.Lock):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.timings, self.lock = timings, lock

    def request(self, method: str, path: str, body: dict | str | None = None, endpoint: str = "") -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                   "Origin": f"http://127.0.0.1:{self.connection.port}"}
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        if isinstance(body, dict):
            body, headers["Content-Type"] = json.dumps(body), "application/json"
        elif isinstance(body, str):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException):
            self.connection.close()  # the server closed a kept-alive connection: retry once
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if endpoint:
            with self.lock:
                self.timings[endpoint].append(elapsed)
        return response.status, data


def run_listener(port: int, study_id: str, name: str, deadline: float, double_submit: bool, timings: dict,
                 lock: threading.Lock, acknowledged: list, refused_copies: list, errors: list) -> None:
    client = Listener(port, timings, lock)
    base = f"/listen/s/{study_id}/"
    pid = hashlib.sha256(name.encode()).hexdigest()[:24]  # a well-formed Prolific id
    try:
        client.request("GET", f"{base}?PROLIFIC_PID={pid}")
        status, page = client.request("POST", base, f"consent=yes&PROLIFIC_PID={pid}&csrfmiddlewaretoken="
                                      f"{client.cookies['csrftoken']}")
        if status == 200 and b'data-reason="no_slot"' in page:
            return  # the study has no full set of trials left for this listener: told before starting
        assert status == 302, f"consent answered {status}"
        _, page = client.request("GET", f"{base}instructions/")
        practice = json.loads(re.search(rb'id="trial-data" type="application/json">(.*?)</script>', page, re.S)[1])
        answer(client, practice, False, [], [])
        while time.monotonic() < deadline:
            status, data = client.request("GET", f"{base}api/next", endpoint="next-trial")
            assert status == 200, f"next answered {status}: {data[:200]!r}"
            reply = json.loads(data)
            if reply["done"]:
                break
            answer(client, reply["trial"], double_submit, acknowledged, refused_copies)
    except (AssertionError, OSError, KeyError, TypeError) as error:
        with lock:
            errors.append(f"{name}: {error!r}")
    finally:
        client.connection.close()


def answer(client: Listener, trial: dict, double_submit: bool, acknowledged: list, refused_copies: list) -> None:
    sides = ["left", "right"] if trial["task"] == "pair" else ["left"]
    for side in sides:
        status, _ = client.request("GET", trial["audio"][side], endpoint="audio")  # the server records delivery
        assert status == 200, f"audio answered {status}"
        for event in ("play", "ended"):
            status, _ = client.request("POST", trial["play_url"], {"side": side, "event": event}, endpoint="play")
            assert status == 204, f"play answered {status}"
    body = {"answer_key": trial["answer_key"], "response_time_ms": 1500}
    if trial["task"] == "pair":
        body["chosen"] = "left"
    else:
        body["ratings"] = {a: 3 for a in trial["attributes"]}
    status, data = client.request("POST", trial["answer_url"], body, endpoint="submit")
    assert status == 200, f"submit answered {status}: {data[:200]!r}"
    acknowledged.append(trial["id"])
    if double_submit:
        status, data = client.request("POST", trial["answer_url"], body, endpoint="submit (replayed copy)")
        assert status == 409 and json.loads(data)["error"] == "already_recorded", f"copy answered {status}"
        refused_copies.append(trial["id"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start listening in time")


def create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.strip("/")
    admin = url.replace(parts.path, "/postgres").replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = url.replace(parts.path, "/postgres").replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.strip("/")}" WITH (FORCE)')


def build_study(workdir: Path, listeners: int, trials: int):
    """A study of 4 excerpts x 3 comparisons; quotas cover about 90 % of the demand."""
    import soundfile as sf

    from hafm_core.synth import synthesize_multitrack
    from listening.services import create_study

    rate = 16_000
    entries = []
    for index in range(4):
        track = synthesize_multitrack(index, 2.0, rate)
        vocal = workdir / f"v{index}.wav"
        sf.write(vocal, track.stems["vocals"], rate)
        versions = {"ground-truth": track.accompaniment, "three-stage": 0.7 * track.accompaniment,
                    "two-stage": 0.5 * track.accompaniment, "random": synthesize_multitrack(index + 10, 2.0, rate).accompaniment}
        for system, audio in versions.items():
            path = workdir / f"a{index}-{system}.wav"
            sf.write(path, audio, rate)
            entries.append({"excerpt": f"x{index}", "system": system, "vocal_path": str(vocal),
                            "accompaniment_path": str(path), "tempo_bpm": track.tempo_bpm})
    comparisons = [("three-stage", "ground-truth"), ("three-stage", "two-stage"), ("three-stage", "random")]
    n_pref, n_rating = max(1, trials - 1), 1
    quota = max(1, int(0.9 * listeners * n_pref / (4 * len(comparisons))))
    rating_quota = max(1, int(0.9 * listeners * n_rating / (4 * 3)))
    study = create_study(name=f"load {time.time():.0f}", stimuli=entries, comparisons=comparisons,
                         completion_code="LOAD", quota_per_pair=quota, rating_quota_per_clip=rating_quota,
                         preference_trials=n_pref, rating_trials=n_rating, catch_rate=0.2, screening=False,
                         sample_rate_hz=rate)
    # Every simulated listener comes from 127.0.0.1 and answers at once: no join limit per
    # address and no minimum listening time (this measures the server, not the listeners).
    type(study).objects.filter(pk=study.pk).update(joins_per_address=0, pair_listen_share=0.0,
                                                   rating_listen_share=0.0)
    study.refresh_from_db()
    return study


def phase(port: int, study_id: str, n: int, prefix: str, duration_s: float) -> dict:
    timings: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    acknowledged, refused, errors = [], [], []
    deadline = time.monotonic() + duration_s
    threads = [threading.Thread(target=run_listener, args=(port, study_id, f"{prefix}{k}", deadline, k % 10 == 9,
                                                            timings, lock, acknowledged, refused, errors))
               for k in range(n)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + 120)
    wall_s = time.perf_counter() - started
    return {"timings": timings, "acknowledged": acknowledged, "refused": refused, "errors": errors, "wall_s": wall_s}


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def verify(study, acknowledged: list[str], refused: list[str]) -> dict:
    """Compare the clients' acknowledgements with the database."""
    from django.db.models import Count

    from listening.models import Item, Rating, Trial

    answered = Trial.objects.filter(participant__study=study, status="answered").exclude(kind="practice")
    stored = set(map(str, answered.values_list("public_id", flat=True)))
    lost = set(acknowledged) - stored
    phantom = stored - set(acknowledged)
    per_item = dict(answered.filter(item__isnull=False).values_list("item_id").annotate(n=Count("id")))
    counters_off = [i.id for i in Item.objects.filter(study=study) if i.n_judged != per_item.get(i.id, 0)]
    overfilled = [i.id for i in Item.objects.filter(study=study) if i.n_judged > i.quota]
    duplicate_ratings = (Rating.objects.filter(trial__participant__study=study).values("trial", "attribute")
                         .annotate(n=Count("id")).filter(n__gt=1).count())
    return {"acknowledged": len(acknowledged), "stored": len(stored), "lost": len(lost), "phantom": len(phantom),
            "duplicate_acknowledgements": len(acknowledged) - len(set(acknowledged)),
            "replayed_copies_refused": len(refused), "item_counters_off": len(counters_off),
            "items_over_quota": len(overfilled), "duplicate_ratings": duplicate_ratings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--trials", type=int, default=6, help="trials per listener (one is a rating)")
    parser.add_argument("--duration-s", type=float, default=60.0, help="time bound of the loaded phase")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (gthread, 8 threads)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hafm_listening_load")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hafm-listening-load-"))
    env = {**os.environ, "DATABASE_URL": args.database_url, "HAFM_VAR_DIR": str(workdir),
           "HAFM_MEDIA_DIR": str(workdir / "media"),
           "DEBUG": "false", "SECRET_KEY": "listening-load-benchmark-only", "ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SETTINGS_MODULE": "evalsite.settings"}
    os.environ.update(env)
    create_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG off serves the manifest
    study = build_study(workdir, args.listeners, args.trials)
    port = free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "evalsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--worker-class", "gthread", "--threads", "8", "--backlog", "2048",
         "--keep-alive", "30", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True, stderr=open(workdir / "gunicorn.log", "w"))
    try:
        wait_for(port, gunicorn)
        print(f"gunicorn: {args.workers} workers x 8 threads on 127.0.0.1:{port}; PostgreSQL {args.database_url}")
        single = phase(port, str(study.public_id), 1, "solo", 30.0)
        loaded = phase(port, str(study.public_id), args.listeners, "load", args.duration_s)
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)
    from django.db import connections

    connections.close_all()
    report = verify(study, single["acknowledged"] + loaded["acknowledged"], single["refused"] + loaded["refused"])
    print(f"\n{args.listeners} concurrent listeners, {loaded['wall_s']:.1f} s wall "
          f"(bound {args.duration_s:.0f} s), {len(loaded['errors'])} client errors")
    print(f"{'endpoint':24} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'1 listener p50':>15} {'load/1x':>8}")
    for endpoint in ("next-trial", "submit", "play", "submit (replayed copy)"):
        times = loaded["timings"].get(endpoint, [])
        if not times:
            continue
        solo = single["timings"].get(endpoint, [])
        solo_p50 = statistics.median(solo) * 1000 if solo else float("nan")
        print(f"{endpoint:24} {len(times):6d} {percentile_ms(times, .5):8.1f} {percentile_ms(times, .99):8.1f} "
              f"{solo_p50:15.1f} {percentile_ms(times, .5) / solo_p50:8.1f}")
    n_requests = sum(len(v) for v in loaded["timings"].values())
    print(f"throughput: {n_requests / loaded['wall_s']:.0f} timed requests/s, "
          f"{len(loaded['acknowledged']) / loaded['wall_s']:.0f} judgments/s")
    print("database check: " + ", ".join(f"{k}={v}" for k, v in report.items()))
    for error in loaded["errors"][:5]:
        print(f"  client error: {error}")
    ok = (report["lost"] == 0 and report["phantom"] == 0 and report["item_counters_off"] == 0
          and report["items_over_quota"] == 0 and report["duplicate_ratings"] == 0
          and report["duplicate_acknowledgements"] == 0 and not loaded["errors"])
    print("zero lost, zero double-recorded: " + ("yes" if ok else "NO") + f" (server log: {workdir / 'gunicorn.log'})")
    if not args.keep_database:
        drop_database(args.database_url)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Create and manage studies: validate the design, plan its rendering (rendering.py), set its status."""

from __future__ import annotations

import secrets
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from hafm_core.provenance import sha256_file
from listening import stimuli as render
from listening.exceptions import StudySetupError
from listening.models import DEFAULT_ATTRIBUTES, Study
from listening.services.rendering import render_study

REFERENCE_SYSTEMS = ("ground-truth", "ground-truth-raw")
MEDIA_SUBDIR = "listening"


@dataclass(frozen=True)
class StimulusSource:
    """One accompaniment to render: `excerpt` names the vocal excerpt shared by every system."""

    excerpt: str
    system: str
    vocal_path: str
    accompaniment_path: str
    tempo_bpm: float | None = None


def _sources(stimuli: Iterable[dict | StimulusSource]) -> list[StimulusSource]:
    out = []
    for entry in stimuli:
        if isinstance(entry, dict):
            missing = {"excerpt", "system", "vocal_path", "accompaniment_path"} - set(entry)
            if missing:
                raise StudySetupError(f"stimulus {entry!r} lacks {', '.join(sorted(missing))}")
            entry = StimulusSource(str(entry["excerpt"]), str(entry["system"]), str(entry["vocal_path"]),
                                   str(entry["accompaniment_path"]), entry.get("tempo_bpm"))
        out.append(entry)
    return out


def _validate(name: str, sources: list[StimulusSource], comparisons: list[tuple[str, str]],
              quota_per_pair: int, catch_rate: float, completion_code: str) -> dict[str, dict[str, StimulusSource]]:
    if not name.strip():
        raise StudySetupError("the study needs a name")
    if Study.objects.filter(name=name).exists():
        raise StudySetupError(f"a study named {name!r} already exists; choose another name")
    if not completion_code.strip():
        raise StudySetupError("the study needs a completion code (the crowd platform's code)")
    if quota_per_pair < 1:
        raise StudySetupError(f"quota_per_pair={quota_per_pair} must be at least 1")
    if not 0.0 <= catch_rate <= 0.5:
        raise StudySetupError(f"catch_rate={catch_rate} must lie in [0, 0.5]")
    if not comparisons:
        raise StudySetupError("choose at least one comparison, e.g. ('three-stage', 'ground-truth')")
    by_excerpt: dict[str, dict[str, StimulusSource]] = defaultdict(dict)
    for source in sources:
        if source.system in by_excerpt[source.excerpt]:
            raise StudySetupError(f"excerpt {source.excerpt!r} lists system {source.system!r} twice")
        by_excerpt[source.excerpt][source.system] = source
    if not by_excerpt:
        raise StudySetupError("no stimuli given")
    for excerpt, systems in by_excerpt.items():
        vocals = {s.vocal_path for s in systems.values()}
        if len(vocals) != 1:
            raise StudySetupError(f"excerpt {excerpt!r} has different vocals {sorted(vocals)}: every "
                                  "system of an excerpt must share one vocal")
        for a, b in comparisons:
            if a == b:
                raise StudySetupError(f"comparison {a!r} vs {b!r} compares a system with itself")
            for system in (a, b):
                if system not in systems:
                    raise StudySetupError(f"excerpt {excerpt!r} has no clip for system {system!r} "
                                          f"needed by comparison {a} vs {b} (has: {sorted(systems)})")
    return by_excerpt


def _refuse_published_vocals(by_excerpt: dict[str, dict[str, StimulusSource]]) -> None:
    """A study may not use an excerpt whose system-labelled audio a published run plays."""
    from django.apps import apps

    if not apps.is_installed("evalsite"):
        return
    from evalsite.services import run_audio

    published_paths, published_hashes = run_audio.published_vocal_paths(), run_audio.published_vocal_hashes()
    if not published_paths and not published_hashes:
        return
    for excerpt, systems in sorted(by_excerpt.items()):
        vocal_path = next(iter(systems.values())).vocal_path
        try:
            vocal_sha256 = sha256_file(vocal_path)
        except OSError:
            vocal_sha256 = ""  # decoding it will give the clear error
        if vocal_path in published_paths or vocal_sha256 in published_hashes:
            raise StudySetupError(f"excerpt {excerpt!r} is played with its system names on a published run "
                                  "comparison; listeners could unblind it there. Make that run staff-only "
                                  "again (its page's publish button) or leave the excerpt out.")


def plan_study(*, name: str, stimuli: Sequence[dict | StimulusSource], comparisons: Sequence[Sequence[str]],
               completion_code: str, attributes: Sequence[str] | None = None, quota_per_pair: int = 200,
               rating_quota_per_clip: int | None = None, preference_trials: int = 12, rating_trials: int | None = None,
               catch_rate: float = 0.1, screening: bool = True, screened_out_code: str = "",
               catch_reference: str | None = None, sample_rate_hz: int = 44_100, target_lufs: float = -23.0,
               max_duration_s: float = 20.0, listener_title: str = "Music listening study",
               source: str = "uploaded clips", lease_s: int = 900, idle_timeout_s: int = 3600,
               uploads_dir: str | Path | None = None, created_by=None) -> Study:
    """Check the design and create the study `rendering`: no stimulus, no item, nobody can join.

    No audio is decoded here (a request may call it): `rendering.render_study` renders the
    stimuli, creates the quota items and opens the study, or marks it `failed` with the reason.
    `uploads_dir`: a folder of uploaded sources the study owns, removed once it is rendered.

    `stimuli`: one entry per (excerpt, system): {excerpt, system, vocal_path, accompaniment_path,
    optional tempo_bpm (for the half-beat catch clip; estimated when absent)}.
    `comparisons`: system pairs, each judged `quota_per_pair` times per excerpt.
    `attributes`: rating scales (None: the three defaults; []: no rating trials); each clip of a
    compared system is rated `rating_quota_per_clip` times (default `quota_per_pair`). A
    listener rates `rating_trials` clips (default: one per compared system), in blocks of one
    excerpt, so their ratings form complete blocks (Friedman test).
    Catch clips are made from `catch_reference` (default: ground-truth when present, else the
    first system of the first comparison). Raises StudySetupError.
    """
    pairs = [(str(a), str(b)) for a, b in comparisons]
    sources = _sources(stimuli)
    by_excerpt = _validate(name, sources, pairs, quota_per_pair, catch_rate, completion_code)
    attributes = list(DEFAULT_ATTRIBUTES if attributes is None else attributes)
    if len(set(attributes)) != len(attributes) or any(not a.strip() for a in attributes):
        raise StudySetupError(f"attributes {attributes} must be distinct, non-empty names")
    used = sorted({s for pair in pairs for s in pair})
    if catch_reference is None:
        catch_reference = next((s for s in REFERENCE_SYSTEMS if s in used), pairs[0][0])
    if catch_reference not in used:
        raise StudySetupError(f"catch_reference {catch_reference!r} is not a compared system {used}")
    _refuse_published_vocals(by_excerpt)

    spec = {"excerpts": {excerpt: {s: asdict(systems[s]) for s in used} for excerpt, systems in by_excerpt.items()},
            "catch_reference": catch_reference, "max_duration_s": max_duration_s,
            "uploads_dir": str(uploads_dir) if uploads_dir else ""}
    per_excerpt = len(used) + (len(render.CATCH_VARIANTS) if catch_rate > 0 else 0)
    try:
        with transaction.atomic():
            return Study.objects.create(
                name=name, listener_title=listener_title, source=source, attributes=attributes,
                comparisons=[list(p) for p in pairs], quota_per_pair=quota_per_pair,
                rating_quota_per_clip=(quota_per_pair if rating_quota_per_clip is None else rating_quota_per_clip)
                if attributes else 0,
                preference_trials=preference_trials,
                rating_trials=(len(used) if rating_trials is None else rating_trials) if attributes else 0,
                catch_rate=catch_rate, screening_enabled=screening, completion_code=completion_code.strip(),
                screened_out_code=screened_out_code.strip(), lease_s=lease_s, idle_timeout_s=idle_timeout_s,
                target_lufs=target_lufs, sample_rate_hz=sample_rate_hz, media_dir=f"{MEDIA_SUBDIR}/{secrets.token_hex(8)}",
                status=Study.Status.RENDERING, render_spec=spec, render_total=per_excerpt * len(by_excerpt),
                created_by=created_by)
    except IntegrityError as error:  # another study took the name since _validate looked
        raise StudySetupError(f"a study named {name!r} already exists; choose another name") from error


def create_study(**design) -> Study:
    """`plan_study` (same arguments) and render its stimuli here, for callers without a worker
    (a management command, a script): the study returned is open. When rendering fails nothing
    is left behind and its error (StudySetupError or an AudioError) is raised."""
    study = plan_study(**design)
    try:
        render_study(study.pk)
    except BaseException:
        study.delete()
        shutil.rmtree(Path(settings.MEDIA_ROOT) / study.media_dir, ignore_errors=True)
        raise
    study.refresh_from_db()
    return study


def set_study_status(study: Study, status: str) -> Study:
    """Open, pause or close a rendered study; rendering states are never set by hand."""
    if status not in Study.STAFF_STATUSES:
        raise StudySetupError(f"unknown study status {status!r}; use one of {list(Study.STAFF_STATUSES)}")
    with transaction.atomic():
        updated = Study.objects.filter(pk=study.pk).exclude(status__in=Study.RENDER_STATUSES).update(status=status)
    study.refresh_from_db(fields=["status"])
    if not updated:
        raise StudySetupError(f"study {study.name!r} is {study.status}: it has no stimuli to open yet")
    return study

"""Create and manage studies: validate the design, render stimuli once, create quota items."""

from __future__ import annotations

import secrets
import shutil
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from hafm_core.errors import HafmError
from hafm_core.provenance import sha256_bytes, sha256_file
from listening import stimuli as render
from listening.exceptions import StudySetupError
from listening.models import DEFAULT_ATTRIBUTES, Item, Stimulus, Study

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


def _study_rendering(by_excerpt: dict[str, dict[str, StimulusSource]], used: list[str],
                     config: render.RenderConfig) -> render.RenderConfig:
    """One rendering for every clip: a first pass reads each source once for its bandwidth and
    layout (and drops it: a study's audio need not fit in memory at once)."""
    paths = sorted({p for systems in by_excerpt.values() for s in used
                    for p in (systems[s].vocal_path, systems[s].accompaniment_path)})
    return render.study_rendering([render.read_source(p, config.sample_rate_hz) for p in paths], config)


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


def _write_clip(folder: Path, clip: render.RenderedClip) -> tuple[str, bytes]:
    data = render.wav_bytes_pcm16(clip.samples, clip.sample_rate_hz)
    path = folder / f"{secrets.token_hex(16)}.wav"
    render.write_atomic(path, data)
    return str(path.relative_to(Path(settings.MEDIA_ROOT))), data


def create_study(*, name: str, stimuli: Sequence[dict | StimulusSource], comparisons: Sequence[Sequence[str]],
                 completion_code: str, attributes: Sequence[str] | None = None, quota_per_pair: int = 200,
                 rating_quota_per_clip: int | None = None, preference_trials: int = 12, rating_trials: int | None = None,
                 catch_rate: float = 0.1, screening: bool = True, screened_out_code: str = "",
                 catch_reference: str | None = None, sample_rate_hz: int = 44_100, target_lufs: float = -23.0,
                 max_duration_s: float = 20.0, listener_title: str = "Music listening study",
                 source: str = "uploaded clips", lease_s: int = 900, idle_timeout_s: int = 3600,
                 created_by=None) -> Study:
    """Render every stimulus once and create the study, its stimuli and its quota items.

    `stimuli`: one entry per (excerpt, system): {excerpt, system, vocal_path, accompaniment_path,
    optional tempo_bpm (for the half-beat catch clip; estimated when absent)}.
    `comparisons`: system pairs, each judged `quota_per_pair` times per excerpt.
    `attributes`: rating scales (None: the three defaults; []: no rating trials); each clip of a
    compared system is rated `rating_quota_per_clip` times (default `quota_per_pair`). A
    listener rates `rating_trials` clips (default: one per compared system), in blocks of one
    excerpt, so their ratings form complete blocks (Friedman test).
    Catch clips are made from `catch_reference` (default: ground-truth when present, else the
    first system of the first comparison). Raises StudySetupError or an AudioError.
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
    media_dir = f"{MEDIA_SUBDIR}/{secrets.token_hex(8)}"
    folder = Path(settings.MEDIA_ROOT) / media_dir
    rows: list[Stimulus] = []
    try:
        config = _study_rendering(by_excerpt, used, render.RenderConfig(sample_rate_hz, target_lufs, max_duration_s))
        for excerpt, systems in sorted(by_excerpt.items()):
            vocal_path = next(iter(systems.values())).vocal_path
            vocal = render.read_stereo(vocal_path, sample_rate_hz)
            vocal_sha256 = sha256_file(vocal_path)
            accompaniments = {s: render.read_stereo(systems[s].accompaniment_path, sample_rate_hz) for s in used}
            clips = render.render_excerpt(vocal, accompaniments, config, catch_system=catch_reference if catch_rate > 0
                                          else None, tempo_bpm=systems[catch_reference].tempo_bpm, excerpt=excerpt)
            for clip in clips:
                file_name, data = _write_clip(folder, clip)
                rows.append(Stimulus(excerpt=excerpt, system=clip.system, variant=clip.variant,
                                     file_name=file_name, sha256=sha256_bytes(data), n_bytes=len(data),
                                     duration_s=clip.duration_s, loudness_lufs=clip.loudness_lufs,
                                     source_vocal=vocal_path, source_vocal_sha256=vocal_sha256,
                                     source_accompaniment=systems[clip.system].accompaniment_path))
        with transaction.atomic():
            study = Study.objects.create(
                name=name, listener_title=listener_title, source=source, attributes=attributes,
                comparisons=[list(p) for p in pairs], quota_per_pair=quota_per_pair,
                rating_quota_per_clip=(quota_per_pair if rating_quota_per_clip is None else rating_quota_per_clip)
                if attributes else 0,
                preference_trials=preference_trials,
                rating_trials=(len(used) if rating_trials is None else rating_trials) if attributes else 0,
                catch_rate=catch_rate, screening_enabled=screening, completion_code=completion_code.strip(),
                screened_out_code=screened_out_code.strip(), lease_s=lease_s, idle_timeout_s=idle_timeout_s,
                target_lufs=target_lufs, sample_rate_hz=sample_rate_hz, bandwidth_hz=config.bandwidth_hz,
                channel_layout="dual-mono" if config.mono else "stereo", media_dir=media_dir,
                created_by=created_by)
            for row in rows:
                row.study = study
            Stimulus.objects.bulk_create(rows)
            _create_items(study, pairs)
    except (IntegrityError, HafmError, OSError):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return study


def _create_items(study: Study, pairs: list[tuple[str, str]]) -> None:
    clips = {(s.excerpt, s.system): s for s in study.stimuli.filter(variant="")}
    excerpts = sorted({excerpt for excerpt, _ in clips})
    items = [Item(study=study, kind=Item.Kind.PREFERENCE, excerpt=excerpt, stimulus_a=clips[excerpt, a],
                  stimulus_b=clips[excerpt, b], quota=study.quota_per_pair)
             for excerpt in excerpts for a, b in pairs]
    if study.attributes and study.rating_quota_per_clip > 0:
        used = sorted({s for pair in pairs for s in pair})
        items += [Item(study=study, kind=Item.Kind.RATING, excerpt=excerpt, stimulus_a=clips[excerpt, system],
                       quota=study.rating_quota_per_clip) for excerpt in excerpts for system in used]
    Item.objects.bulk_create(items)


def set_study_status(study: Study, status: str) -> Study:
    if status not in Study.Status.values:
        raise StudySetupError(f"unknown study status {status!r}; use one of {Study.Status.values}")
    with transaction.atomic():
        Study.objects.filter(pk=study.pk).update(status=status)
    study.refresh_from_db(fields=["status"])
    return study

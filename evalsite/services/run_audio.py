"""Who may hear a run's system-labelled audio: staff, or anyone once staff publish it.

A run's comparison page plays every system's clip of each excerpt under its system name. A
listening study made from the same excerpts would then be unblinded by matching its clips to
that public audio, so publishing is refused while any study uses one of the run's excerpts
(matched by vocal path or by the vocal's content hash, so re-uploaded copies count too), and
a study is refused an excerpt whose vocal a published run plays (`published_vocal_hashes`).
"""

from __future__ import annotations

from django.db import transaction

from evalsite.models import BenchmarkRun, Excerpt
from hafm_core.errors import HafmError
from hafm_core.provenance import sha256_file


class PublishRefused(HafmError):
    """The run's audio cannot be made public (a study uses its excerpts)."""


def _run_excerpts(run: BenchmarkRun) -> list[Excerpt]:
    return list(Excerpt.objects.filter(clips__run=run).distinct())


def _vocal_hash(path: str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def studies_using(run: BenchmarkRun) -> list[str]:
    """Names of the listening studies whose stimuli use a vocal of this run's excerpts."""
    from django.db.models import Q

    from listening.models import Stimulus

    excerpts = _run_excerpts(run)
    paths = {e.vocal_path for e in excerpts}
    hashes = {h for h in (_vocal_hash(p) for p in paths) if h}
    used = Stimulus.objects.filter(Q(source_vocal__in=paths) | Q(source_vocal_sha256__in=hashes))
    return sorted(set(used.values_list("study__name", flat=True)))


def publish(run: BenchmarkRun) -> BenchmarkRun:
    """Make the run's comparison page and audio public; PublishRefused while a study uses them."""
    if run.status != BenchmarkRun.Status.DONE:
        raise PublishRefused(f"run {str(run.id)[:8]} is {run.status}: only a finished run can be published")
    studies = studies_using(run)
    if studies:
        raise PublishRefused(f"{len(studies)} listening stud{'y uses' if len(studies) == 1 else 'ies use'} "
                             "this run's excerpts; publishing its system-labelled audio would unblind "
                             "them. Delete those studies first.")
    hashes = sorted({h for h in (_vocal_hash(e.vocal_path) for e in _run_excerpts(run)) if h})
    with transaction.atomic():
        BenchmarkRun.objects.filter(pk=run.pk).update(audio_public=True, published_audio_sha256=hashes)
    run.refresh_from_db(fields=["audio_public", "published_audio_sha256"])
    return run


def unpublish(run: BenchmarkRun) -> BenchmarkRun:
    BenchmarkRun.objects.filter(pk=run.pk).update(audio_public=False, published_audio_sha256=[])
    run.refresh_from_db(fields=["audio_public", "published_audio_sha256"])
    return run


def published_vocal_hashes() -> set[str]:
    """Content hashes of every vocal a published run plays to anyone."""
    hashes: set[str] = set()
    for listed in BenchmarkRun.objects.filter(audio_public=True).values_list("published_audio_sha256", flat=True):
        hashes.update(listed or [])
    return hashes


def published_vocal_paths() -> set[str]:
    return set(Excerpt.objects.filter(clips__run__audio_public=True).values_list("vocal_path", flat=True))

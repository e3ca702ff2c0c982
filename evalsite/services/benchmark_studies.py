"""A listening study from a finished run: the excerpts every system generated, as stimuli."""

from __future__ import annotations

from collections import defaultdict

from evalsite.models import BenchmarkRun, GeneratedClip

# Pairs judged by listeners, in the paper's order; those with a missing system are left out.
COMPARISONS = (("three-stage", "two-stage"), ("three-stage", "ground-truth"), ("three-stage", "random"))


def create_study_from_run(run: BenchmarkRun, *, name: str, completion_code: str = "HAFM-DEMO",
                          quota_per_pair: int = 20, created_by=None):
    """The study named `name` (made once: an existing study of that name is returned)."""
    from listening.models import Study
    from listening.services import create_study

    existing = Study.objects.filter(name=name).first()
    if existing is not None:
        return existing
    clips = (GeneratedClip.objects.filter(run=run, status=GeneratedClip.Status.DONE)
             .select_related("excerpt").order_by("excerpt__key"))
    by_excerpt: dict[str, list[GeneratedClip]] = defaultdict(list)
    for clip in clips:
        by_excerpt[clip.excerpt.key].append(clip)
    stimuli = [{"excerpt": key, "system": clip.system, "vocal_path": clip.excerpt.vocal_path,
                "accompaniment_path": clip.accompaniment_path}
               for key, excerpt_clips in by_excerpt.items() if len(excerpt_clips) == len(run.systems)
               for clip in excerpt_clips]
    comparisons = [pair for pair in COMPARISONS if set(pair) <= set(run.systems)]
    return create_study(name=name, stimuli=stimuli, comparisons=comparisons, completion_code=completion_code,
                        quota_per_pair=quota_per_pair, source=f"benchmark run {run.id}", created_by=created_by)

"""Benchmark records: datasets and their excerpts, checkpoints, runs and generated clips.

Public identifiers are UUIDs. Uniqueness and required links are database constraints, so
a duplicate launch or an orphan clip is refused by the database, not only by a form.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from hafm_core import constants


class Dataset(models.Model):
    """A prepared set of excerpts (`hafm data prepare`), identified by its manifest's content."""

    class Kind(models.TextChoices):
        MUSDB18 = "musdb18"
        STEMS = "stems"
        SAMPLE = "sample"
        SYNTHETIC = "synthetic"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=1024, help_text="the path or spec it was prepared from")
    manifest_path = models.CharField(max_length=1024)
    manifest_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind}:{self.source}"


class Excerpt(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="excerpts")
    key = models.CharField(max_length=255, help_text="the manifest's excerpt id")
    track = models.CharField(max_length=255)
    split = models.CharField(max_length=16)
    start_s = models.FloatField()
    duration_s = models.FloatField()
    vocal_path = models.CharField(max_length=1024)
    accompaniment_path = models.CharField(max_length=1024)
    content_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="excerpt_unique_key"),
            models.CheckConstraint(condition=Q(duration_s__gt=0), name="excerpt_positive_duration"),
        ]
        ordering = ["track", "start_s"]

    def __str__(self) -> str:
        return self.key


class Checkpoint(models.Model):
    """A cascade folder `CKPT/ar_{semantic,coarse,fine}/ckpt_best.pt`, by content hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=1024)
    content_hash = models.CharField(max_length=64, unique=True)
    stages = models.JSONField(default=list, help_text="stages present, e.g. [semantic, coarse, fine]")
    config = models.JSONField(default=dict, help_text="model config of each stage")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.content_hash[:10]})"


class BenchmarkRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        # Planned, but the broker did not take its tasks: `resume` (or a relaunch) sends them.
        UNDISPATCHED = "undispatched"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Phase(models.TextChoices):
        GENERATE = "generate"  # clips being generated
        MEASURE = "measure"  # FAD and fit metrics per system
        COMPARE = "compare"  # paired comparison of three-stage with two-stage
        FINISHED = "finished"

    ACTIVE = (Status.PENDING, Status.RUNNING, Status.UNDISPATCHED)
    LIVE = (*ACTIVE, Status.DONE)  # at most one live run per parameters hash

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    systems = models.JSONField(help_text="systems compared, in launch order")
    n_excerpts = models.PositiveIntegerField()
    seed = models.BigIntegerField()
    embedder = models.CharField(max_length=32)
    parameters = models.JSONField(default=dict, help_text="sampling and FAD parameters")
    parameters_hash = models.CharField(max_length=64, help_text="hash of everything that defines the run")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Which step is under way. Tasks advance it with conditional UPDATEs, so among racing
    # workers exactly one dispatches the next step.
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.GENERATE)
    queue = models.CharField(max_length=200, blank=True, help_text="Celery queue its tasks go to")
    results = models.JSONField(default=dict, blank=True,
                               help_text="paired comparisons between systems (written once per run)")
    code_version = models.CharField(max_length=64)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, help_text="seconds spent per phase")
    # The comparison page and its audio pair systems with excerpts: staff-only unless a staff
    # member publishes them (evalsite.services.run_audio), which no listening study may overlap.
    audio_public = models.BooleanField(default=False)
    published_audio_sha256 = models.JSONField(default=list, blank=True,
                                              help_text="content hashes of the vocals made public")
    step_attempts = models.JSONField(default=dict, blank=True,
                                     help_text="times each step was started: a step whose worker keeps "
                                               "dying fails the run instead of looping")

    class Meta:
        constraints = [
            # Launching the same run twice reuses it; a cancelled or failed run may be relaunched.
            models.UniqueConstraint(
                fields=["parameters_hash"],
                condition=Q(status__in=["pending", "running", "undispatched", "done"]),
                name="run_unique_live_parameters",
            ),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"run {str(self.id)[:8]} of {self.checkpoint.name}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def dtype(self) -> str:
        """Precision of the cascade's weights for this run's clips (runs recorded before the
        parameter generated in float32)."""
        return self.parameters.get("dtype", constants.DEFAULT_MODEL_DTYPE)


class GeneratedClip(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="clips")
    excerpt = models.ForeignKey(Excerpt, on_delete=models.PROTECT, related_name="clips")
    system = models.CharField(max_length=32)
    seed = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    accompaniment_path = models.CharField(max_length=1024, blank=True)
    mix_path = models.CharField(max_length=1024, blank=True)
    sidecar = models.JSONField(default=dict, blank=True)
    fit = models.JSONField(default=dict, blank=True, help_text="musical-fit metrics of this clip")
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="generation time")
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "excerpt", "system"], name="clip_unique_per_run"),
            models.CheckConstraint(
                condition=~Q(status="done") | ~Q(accompaniment_path=""), name="clip_done_has_audio",
            ),
        ]
        indexes = [models.Index(fields=["run", "system", "status"])]

    def __str__(self) -> str:
        return f"{self.system} / {self.excerpt_id}"


class SystemResult(models.Model):
    """What a run measured for one system: FAD against the background with its CI, fit metrics."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(BenchmarkRun, on_delete=models.CASCADE, related_name="system_results")
    system = models.CharField(max_length=32)
    fad = models.FloatField(null=True, blank=True)
    fad_low = models.FloatField(null=True, blank=True)
    fad_high = models.FloatField(null=True, blank=True)
    fad_method = models.CharField(max_length=200, blank=True)
    n_eval = models.PositiveIntegerField(default=0)
    n_background = models.PositiveIntegerField(default=0)
    embedder = models.CharField(max_length=32)
    protocol = models.CharField(max_length=64, blank=True)
    fit = models.JSONField(default=dict, blank=True,
                           help_text="per metric: mean with bootstrap CI over excerpts")
    provenance = models.JSONField(default=dict, blank=True,
                                  help_text="embedder weights/code hashes, code version")
    error = models.TextField(blank=True, help_text="why FAD could not be computed")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "system"], name="system_result_unique_per_run"),
            models.CheckConstraint(condition=Q(fad__isnull=True) | Q(fad__gte=0),
                                   name="system_result_fad_not_negative"),
            models.CheckConstraint(condition=Q(fad__isnull=False) | ~Q(error=""),
                                   name="system_result_fad_or_error"),
        ]
        ordering = ["run", "system"]

    def __str__(self) -> str:
        return f"{self.system}: FAD {self.fad}"

"""FAD jobs run on Celery workers: one `FadResult` per job, one `FadShard` per map task.

A shard's statistics are stored on its row, keyed by (result, side, index): a redelivered
shard finds its row done and adds nothing, so a killed worker never makes a file count twice.
The reduce step merges exactly the done rows. Every result records what produced it.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class FadResult(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        REDUCING = "reducing"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    background = models.CharField(max_length=1024)
    eval = models.CharField(max_length=1024)
    embedder = models.CharField(max_length=32)
    protocol = models.CharField(max_length=64)
    with_ci = models.BooleanField(default=False)
    with_fad_inf = models.BooleanField(default=False)
    seed = models.IntegerField(default=0)
    queue = models.CharField(max_length=128, blank=True, help_text="Celery queue of its tasks")
    n_shards = models.PositiveIntegerField()
    # Filled by the reduce step.
    n_background = models.PositiveIntegerField(null=True, blank=True)
    n_eval = models.PositiveIntegerField(null=True, blank=True)
    n_background_frames = models.PositiveIntegerField(null=True, blank=True)
    n_eval_frames = models.PositiveIntegerField(null=True, blank=True)
    fad = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    ci_method = models.CharField(max_length=128, blank=True)
    fad_inf = models.FloatField(null=True, blank=True)
    fad_inf_slope = models.FloatField(null=True, blank=True)
    fad_inf_r2 = models.FloatField(null=True, blank=True)
    weights_hash = models.CharField(max_length=64, blank=True)
    embedder_code_hash = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    report = models.JSONField(default=dict, blank=True, help_text="the full report, as `hafm fad --json`")

    ACTIVE = (Status.PENDING, Status.RUNNING, Status.REDUCING)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(fad__isnull=True) | Q(fad__gte=0), name="fad_result_nonnegative"),
            models.CheckConstraint(
                condition=Q(ci_low__isnull=True) | Q(ci_high__isnull=True) | Q(ci_low__lte=models.F("ci_high")),
                name="fad_result_ci_ordered",
            ),
            models.CheckConstraint(condition=~Q(status="done") | Q(fad__isnull=False),
                                   name="fad_result_done_has_fad"),
        ]

    def __str__(self) -> str:
        return f"FAD {self.protocol} {self.eval} vs {self.background} ({self.status})"


class FadShard(models.Model):
    class Side(models.TextChoices):
        BACKGROUND = "background"
        EVAL = "eval"

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    result = models.ForeignKey(FadResult, on_delete=models.CASCADE, related_name="shards")
    side = models.CharField(max_length=16, choices=Side.choices)
    index = models.PositiveIntegerField()
    paths = models.JSONField(help_text="audio files of this shard, in order")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="deliveries that started embedding")
    files_done = models.PositiveIntegerField(default=0)
    stats = models.JSONField(null=True, blank=True, help_text="EmbeddingStats.to_json(): count, sum, scatter")
    files = models.JSONField(default=list, blank=True, help_text="per file: path, audio hash, cache key, frames")
    embedder_info = models.JSONField(default=dict, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["result", "side", "index"]
        constraints = [
            models.UniqueConstraint(fields=["result", "side", "index"], name="fad_shard_unique_index"),
            models.CheckConstraint(condition=~Q(status="done") | Q(stats__isnull=False),
                                   name="fad_shard_done_has_stats"),
        ]

    def __str__(self) -> str:
        return f"{self.side} shard {self.index} of {self.result_id}"

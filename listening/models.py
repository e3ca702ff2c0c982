"""Listening studies: stimuli, allocation items, participants, trials and their answers.

Every row a listener can reach is addressed by a random UUID (`public_id`), never by its row
id; nothing a listener receives carries a system name (see `listening.blinding`). Judgment
counters move with `F()` expressions under a row lock (`listening.services.allocation`), and
the database itself refuses double answers (unique and check constraints below).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

PROLIFIC_ID_PATTERN = "[0-9a-f]{24}"
DEFAULT_ATTRIBUTES = ["rhythmic alignment", "harmonic compatibility", "overall coherence"]
SIDES = ("left", "right")


def fully_delivered(delivery: dict | None) -> bool:
    """Whether one side's `Trial.deliveries` entry covers every byte of its rendition."""
    return bool(delivery) and delivery.get("size", 0) > 0 and delivery.get("ranges") == [[0, delivery["size"]]]


class Study(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "open"
        PAUSED = "paused", "paused (no new listeners, no answers taken)"
        CLOSED = "closed", "closed"
        RENDERING = "rendering", "rendering its stimuli"
        UNDISPATCHED = "undispatched", "waiting: the broker did not take its rendering task"
        FAILED = "failed", "rendering failed"

    # Statuses staff may set once the stimuli exist; the other three belong to rendering
    # (listening.services.rendering), and a listener can join none of them.
    STAFF_STATUSES = (Status.OPEN, Status.PAUSED, Status.CLOSED)
    RENDER_STATUSES = (Status.RENDERING, Status.UNDISPATCHED, Status.FAILED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True, help_text="Staff-only; never shown to listeners.")
    listener_title = models.CharField(max_length=200, default="Music listening study")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    source = models.CharField(max_length=300, blank=True, help_text="Benchmark run or 'uploaded clips'.")
    attributes = models.JSONField(default=list, blank=True)
    comparisons = models.JSONField(default=list, help_text="[[system_a, system_b], ...]")
    quota_per_pair = models.PositiveIntegerField(help_text="Judgments wanted per (excerpt, system pair).")
    rating_quota_per_clip = models.PositiveIntegerField(default=0)
    preference_trials = models.PositiveIntegerField(default=12, help_text="Per listener, catch trials included.")
    rating_trials = models.PositiveIntegerField(default=3, help_text="Per listener.")
    catch_rate = models.FloatField(default=0.1)
    screening_enabled = models.BooleanField(default=True)
    completion_code = models.CharField(max_length=64)
    screened_out_code = models.CharField(max_length=64, blank=True)
    no_slot_code = models.CharField(
        max_length=64, blank=True,
        help_text="Shown to a listener the study cannot give a full set of trials (never the completion code).")
    external_id_pattern = models.CharField(
        max_length=200, default=PROLIFIC_ID_PATTERN, blank=True,
        help_text="Regular expression a (lower-cased, whitespace-free) external id must match in full; "
                  "default: Prolific's 24 hex characters. Empty: any printable id.")
    joins_per_address = models.PositiveIntegerField(
        default=5, help_text="New participations one client address may open per join window (0: no limit).")
    join_window_s = models.PositiveIntegerField(default=3600)
    pair_listen_share = models.FloatField(
        default=0.5, help_text="A pair is answerable this share of its longer clip's duration after being served.")
    rating_listen_share = models.FloatField(
        default=1.0, help_text="A rated clip is answerable this share of its duration after being served.")
    lease_s = models.PositiveIntegerField(default=900, help_text="A trial's claim on a quota slot expires after this.")
    idle_timeout_s = models.PositiveIntegerField(default=3600, help_text="A listener idle this long is timed out.")
    token_max_age_s = models.PositiveIntegerField(default=4 * 3600)
    target_lufs = models.FloatField(default=-23.0)
    sample_rate_hz = models.PositiveIntegerField(default=44_100)
    channel_layout = models.CharField(max_length=16, default="stereo",
                                      help_text="dual-mono when any source is mono, else stereo.")
    bandwidth_hz = models.FloatField(null=True, blank=True,
                                     help_text="Every stimulus is low-passed here: the narrowest source's bandwidth.")
    media_dir = models.CharField(max_length=100, editable=False, help_text="Opaque folder under MEDIA_ROOT.")
    render_spec = models.JSONField(default=dict, blank=True, editable=False,
                                   help_text="What the rendering task reads: sources by excerpt and system.")
    render_total = models.PositiveIntegerField(default=0, help_text="Stimuli the rendering makes.")
    rendered_clips = models.PositiveIntegerField(default=0, help_text="Stimuli rendered so far.")
    render_error = models.TextField(blank=True, help_text="Why rendering failed or waits for the broker.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(catch_rate__gte=0) & Q(catch_rate__lte=0.5),
                                   name="study_catch_rate_range"),
            models.CheckConstraint(condition=Q(pair_listen_share__gte=0) & Q(pair_listen_share__lte=1)
                                   & Q(rating_listen_share__gte=0) & Q(rating_listen_share__lte=1),
                                   name="study_listen_share_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Stimulus(models.Model):
    """One rendered clip: the excerpt's vocal mixed with one accompaniment, loudness-matched."""

    class Variant(models.TextChoices):
        NONE = "", "as generated"
        HALF_BEAT_SHIFT = "half-beat-shift", "accompaniment shifted by half a beat"
        TRITONE = "tritone", "accompaniment transposed by a tritone"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    excerpt = models.CharField(max_length=200)
    system = models.CharField(max_length=100)
    variant = models.CharField(max_length=32, choices=Variant.choices, default=Variant.NONE, blank=True)
    file_name = models.CharField(max_length=200, help_text="Opaque path relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64)
    n_bytes = models.PositiveIntegerField()
    duration_s = models.FloatField()
    loudness_lufs = models.FloatField()
    source_vocal = models.CharField(max_length=500, blank=True)
    source_vocal_sha256 = models.CharField(max_length=64, blank=True)
    source_accompaniment = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "stimuli"
        constraints = [
            models.UniqueConstraint(fields=["study", "excerpt", "system", "variant"], name="stimulus_unique"),
        ]

    def __str__(self) -> str:
        suffix = f" ({self.variant})" if self.variant else ""
        return f"{self.excerpt} / {self.system}{suffix}"

    @property
    def label(self) -> str:
        """System name for exports; manipulated catch clips get their own label."""
        return f"{self.system}~{self.variant}" if self.variant else self.system


class Item(models.Model):
    """A unit of allocation with a quota: a 2AFC pair (excerpt, A vs B) or one clip to rate."""

    class Kind(models.TextChoices):
        PREFERENCE = "preference", "preference pair"
        RATING = "rating", "clip to rate"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    excerpt = models.CharField(max_length=200)
    stimulus_a = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="+")
    stimulus_b = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    quota = models.PositiveIntegerField()
    n_judged = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["study", "kind", "n_judged"])]
        constraints = [
            models.CheckConstraint(condition=Q(n_judged__lte=models.F("quota")), name="item_within_quota"),
            models.CheckConstraint(
                condition=(Q(kind="preference") & Q(stimulus_b__isnull=False))
                | (Q(kind="rating") & Q(stimulus_b__isnull=True)),
                name="item_kind_matches_stimuli"),
            models.UniqueConstraint(fields=["study", "stimulus_a", "stimulus_b"], name="item_pair_unique",
                                    condition=Q(kind="preference")),
            models.UniqueConstraint(fields=["study", "stimulus_a"], name="item_clip_unique",
                                    condition=Q(kind="rating")),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.RATING:
            return f"rate {self.stimulus_a}"
        return f"{self.excerpt}: {self.stimulus_a.system} vs {self.stimulus_b.system}"


class Participant(models.Model):
    class Status(models.TextChoices):
        STARTED = "started", "started"
        SCREENED_OUT = "screened_out", "screened out"
        IN_PROGRESS = "in_progress", "in progress"
        COMPLETED = "completed", "completed"
        RETURNED = "returned", "returned"
        TIMED_OUT = "timed_out", "timed out"
        NO_SLOT = "no_slot", "no slot (could not be given a full set of trials)"

    ACTIVE = (Status.STARTED, Status.IN_PROGRESS)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    external_id = models.CharField(max_length=200, help_text="Prolific PID, or a generated id.")
    platform = models.CharField(max_length=16, default="direct")
    platform_study_id = models.CharField(max_length=200, blank=True)
    platform_session_id = models.CharField(max_length=200, blank=True)
    # Keyed hashes (HMAC with SECRET_KEY) of the joining client's address and browser session,
    # for the join rate limits; the address itself is not stored.
    client_hash = models.CharField(max_length=64, blank=True)
    session_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    # Rotated each time a browser session (re)claims the participant: older sessions lose access.
    session_nonce = models.CharField(max_length=32)
    plan = models.JSONField(default=list, help_text="Trial kinds by position 1..n.")
    screening_attempts = models.PositiveSmallIntegerField(default=0)
    screening_passed = models.BooleanField(null=True)
    screening_score = models.PositiveSmallIntegerField(null=True, blank=True)
    practice_done = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="one_participation_per_external_id"),
        ]
        indexes = [models.Index(fields=["study", "status"]),
                   models.Index(fields=["study", "client_hash", "started_at"])]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.status})"


class ScreeningTrial(models.Model):
    """One Huggins-pitch trial: which of three noises holds the faint tone (1, 2 or 3)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="screening_trials")
    attempt = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()
    target = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    answer = models.PositiveSmallIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    audio_bytes = models.PositiveBigIntegerField(default=0, help_text="Audio bytes the server delivered.")

    class Meta:
        ordering = ["attempt", "index"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "attempt", "index"], name="screening_trial_unique"),
            models.CheckConstraint(condition=Q(target__gte=1) & Q(target__lte=3), name="screening_target_range"),
        ]

    def __str__(self) -> str:
        return f"{self.participant.external_id} attempt {self.attempt} #{self.index}"

    @property
    def correct(self) -> bool | None:
        return None if self.answer is None else self.answer == self.target


class Trial(models.Model):
    """One screen a listener answers; holds its 2AFC answer (ratings live in `Rating`)."""

    class Kind(models.TextChoices):
        PRACTICE = "practice", "practice"
        PREFERENCE = "preference", "preference"
        RATING = "rating", "rating"
        CATCH_MANIPULATED = "catch_manipulated", "catch: manipulated accompaniment"
        CATCH_REPEAT = "catch_repeat", "catch: repeated pair, sides swapped"

    class Status(models.TextChoices):
        LEASED = "leased", "shown, awaiting an answer"
        ANSWERED = "answered", "answered"
        ABANDONED = "abandoned", "abandoned (lease lost)"

    CATCH_KINDS = (Kind.CATCH_MANIPULATED, Kind.CATCH_REPEAT)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    # The participant's study, copied (it never changes): the analysis reads a study's answered
    # trials through the (study, status, kind) index in table order, where going through each
    # participant's trials cost a random row lookup per trial (#14 item 9). Every creator sets it.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", db_index=False)
    position = models.PositiveIntegerField(help_text="0 is the practice trial.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, null=True, blank=True, related_name="trials")
    stimulus_left = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="+")
    stimulus_right = models.ForeignKey(Stimulus, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="+")
    repeat_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    expected = models.CharField(max_length=5, blank=True, help_text="Catch trials: the side that fits.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    answer_key = models.CharField(max_length=43, unique=True)
    lease_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    chosen = models.CharField(max_length=5, blank=True)
    catch_passed = models.BooleanField(null=True)
    plays_left = models.PositiveIntegerField(default=0)
    plays_right = models.PositiveIntegerField(default=0)
    ended_left = models.PositiveIntegerField(default=0)
    ended_right = models.PositiveIntegerField(default=0)
    response_time_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Measured on the server: from the trial being served to its answer.")
    response_time_client_ms = models.PositiveIntegerField(null=True, blank=True,
                                                          help_text="As reported by the browser.")
    # Audio the server delivered, per side: {"left": {"size": N, "ranges": [[start, stop], ...],
    # "bytes": total served}, ...}; ranges are merged, so full coverage is [[0, size]].
    deliveries = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["participant", "position"]
        indexes = [models.Index(fields=["item", "status", "lease_expires_at"]),
                   models.Index(fields=["study", "status", "kind"], name="trial_study_status_kind")]
        constraints = [
            models.UniqueConstraint(fields=["participant", "position"], name="trial_position_unique",
                                    condition=~Q(status="abandoned")),
            models.UniqueConstraint(fields=["participant"], name="one_open_trial_per_participant",
                                    condition=Q(status="leased")),
            models.CheckConstraint(
                condition=~Q(status="answered") | Q(kind="rating") | Q(chosen__in=SIDES),
                name="answered_pair_has_choice"),
            models.CheckConstraint(condition=Q(chosen__in=("", *SIDES)), name="trial_chosen_values"),
        ]

    def __str__(self) -> str:
        return f"{self.participant.external_id} #{self.position} {self.kind} ({self.status})"

    @property
    def is_catch(self) -> bool:
        return self.kind in self.CATCH_KINDS

    @property
    def is_pair(self) -> bool:
        return self.kind != self.Kind.RATING


class Rating(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="ratings")
    attribute = models.CharField(max_length=100)
    score = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "attribute"], name="one_rating_per_attribute"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.attribute}={self.score}"

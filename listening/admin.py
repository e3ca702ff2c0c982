"""Admin: studies with export and status actions; participants and trials read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from hafm_core.errors import HafmError
from listening import exports, selectors, services
from listening.models import Item, Participant, Rating, ScreeningTrial, Stimulus, Study, Trial


class ReadOnlyAdmin(admin.ModelAdmin):
    """Judgments are written by the listener flow only; staff read them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "quota_per_pair", "catch_rate", "screening_enabled", "created_at", "page"]
    list_filter = ["status"]
    readonly_fields = ["public_id", "media_dir", "comparisons", "created_at", "created_by", "source"]
    actions = ["export_csvs", "open_studies", "pause_studies", "close_studies"]

    def has_add_permission(self, request):
        return False  # studies are created by rendering stimuli: the staff page or create_study()

    @admin.display(description="Progress page")
    def page(self, study):
        return format_html('<a href="{}">progress</a>', reverse("listening:staff-detail", args=[study.public_id]))

    @admin.action(description="Export preferences.csv, ratings.csv, participants.csv (zip)")
    def export_csvs(self, request, queryset):
        response = HttpResponse(exports.zip_bytes(queryset), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="listening-exports.zip"'
        return response

    def _set_status(self, request, queryset, status):
        changed = 0
        for study in queryset:
            try:
                services.set_study_status(study, status)
            except HafmError as error:  # e.g. a study still rendering: said, the others go on
                self.message_user(request, str(error), level=messages.ERROR)
            else:
                changed += 1
        self.message_user(request, f"{changed} study(ies) set to {status}.")

    @admin.action(description="Open (accept listeners)")
    def open_studies(self, request, queryset):
        self._set_status(request, queryset, Study.Status.OPEN)

    @admin.action(description="Pause (no new listeners)")
    def pause_studies(self, request, queryset):
        self._set_status(request, queryset, Study.Status.PAUSED)

    @admin.action(description="Close")
    def close_studies(self, request, queryset):
        self._set_status(request, queryset, Study.Status.CLOSED)


@admin.register(Stimulus)
class StimulusAdmin(ReadOnlyAdmin):
    list_display = ["excerpt", "system", "variant", "duration_s", "loudness_lufs", "study"]
    list_filter = ["study", "system", "variant"]


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "n_judged", "quota", "study"]
    list_filter = ["study", "kind"]


class RatingInline(admin.TabularInline):
    model = Rating
    extra = 0
    can_delete = False
    readonly_fields = ["attribute", "score"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdmin):
    list_display = ["participant", "position", "kind", "status", "chosen", "catch_passed", "plays_left",
                    "plays_right", "response_time_ms", "answered_at"]
    list_filter = ["participant__study", "kind", "status"]
    inlines = [RatingInline]


class ScreeningInline(admin.TabularInline):
    model = ScreeningTrial
    extra = 0
    can_delete = False
    fields = ["attempt", "index", "target", "answer", "answered_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "study", "status", "screening_passed", "screening_score", "started_at",
                    "completed_at", "flags"]
    list_filter = ["study", "status", "platform"]
    search_fields = ["external_id"]
    inlines = [ScreeningInline]

    def changelist_view(self, request, extra_context=None):
        self._flags = {}  # per page: each study's flags computed once (one pass over its trials)
        return super().changelist_view(request, extra_context)

    @admin.display(description="Behaviour flags")
    def flags(self, participant):
        cache = getattr(self, "_flags", {})
        if participant.study_id not in cache:
            cache[participant.study_id] = selectors.participant_flags(participant.study)
        return ", ".join(cache[participant.study_id].get(participant.pk, [])) or "-"

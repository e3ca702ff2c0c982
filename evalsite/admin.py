from django.contrib import admin

from evalsite.models import BenchmarkRun, Checkpoint, Dataset, Excerpt, GeneratedClip, SystemResult


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("kind", "source", "manifest_hash", "created")
    list_filter = ("kind",)
    readonly_fields = ("id", "created")


@admin.register(Excerpt)
class ExcerptAdmin(admin.ModelAdmin):
    list_display = ("key", "track", "split", "start_s", "duration_s", "dataset")
    list_filter = ("split", "dataset")
    search_fields = ("key", "track")
    list_select_related = ("dataset",)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("name", "path", "content_hash", "created")
    search_fields = ("name", "path", "content_hash")
    readonly_fields = ("id", "created")


class GeneratedClipInline(admin.TabularInline):
    model = GeneratedClip
    fields = ("excerpt", "system", "seed", "status", "error", "seconds")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("excerpt")


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = ("id", "checkpoint", "dataset", "status", "phase", "n_excerpts", "seed", "embedder", "created")
    list_filter = ("status", "embedder")
    list_select_related = ("checkpoint", "dataset")
    readonly_fields = ("id", "created", "started", "finished", "code_version", "parameters_hash", "timings")
    inlines = [GeneratedClipInline]


@admin.register(GeneratedClip)
class GeneratedClipAdmin(admin.ModelAdmin):
    list_display = ("run", "excerpt", "system", "status", "seconds")
    list_filter = ("status", "system")
    list_select_related = ("run__checkpoint", "excerpt")
    search_fields = ("excerpt__key",)


@admin.register(SystemResult)
class SystemResultAdmin(admin.ModelAdmin):
    list_display = ("run", "system", "fad", "fad_low", "fad_high", "n_eval", "embedder", "error")
    list_filter = ("system", "embedder")
    list_select_related = ("run__checkpoint",)
    readonly_fields = ("id", "created")

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from evalsite import views, views_fad

site_patterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("fad/", views_fad.fad_results, name="fad_results"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/new", views.run_launch, name="run_launch"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/progress.json", views.run_progress, name="run_progress"),
    path("runs/<uuid:run_id>/cancel", views.run_cancel, name="run_cancel"),
    path("runs/<uuid:run_id>/resume", views.run_resume, name="run_resume"),
    path("runs/<uuid:run_id>/compare", views.run_compare, name="run_compare"),
    path("runs/<uuid:run_id>/publish", views.run_publish, name="run_publish"),
    path("clips/<uuid:clip_id>/<str:kind>.wav", views.clip_audio, name="clip_audio"),
    path("excerpts/<uuid:excerpt_id>/<str:kind>.wav", views.excerpt_audio, name="excerpt_audio"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly_js"),
]

urlpatterns = [
    path("", include((site_patterns, "evalsite"))),
    path("admin/", admin.site.urls),
    path("listen/", include("listening.urls")),
    path("analysis/", include("analysis.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

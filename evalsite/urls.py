from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from evalsite import views

site_patterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
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

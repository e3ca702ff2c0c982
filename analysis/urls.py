from django.urls import path

from analysis import views

app_name = "analysis"
urlpatterns = [
    path("", views.index, name="index"),
    path("studies/<uuid:study_id>/", views.study_dashboard, name="study"),
    path("studies/<uuid:study_id>/report.html", views.study_report, name="study-report"),
    path("fad/", views.fad_dashboard, name="fad"),
]

from django.urls import path

from listening.views import audio, listener, staff

app_name = "listening"
urlpatterns = [
    path("s/<uuid:study_id>/", listener.landing, name="landing"),
    path("s/<uuid:study_id>/screening/", listener.screening, name="screening"),
    path("s/<uuid:study_id>/instructions/", listener.instructions, name="instructions"),
    path("s/<uuid:study_id>/trial/", listener.trial, name="trial"),
    path("s/<uuid:study_id>/done/", listener.done, name="done"),
    path("s/<uuid:study_id>/leave/", listener.leave, name="leave"),
    path("s/<uuid:study_id>/api/next", listener.api_next, name="api-next"),
    path("s/<uuid:study_id>/api/trials/<uuid:trial_id>/play", listener.api_play, name="api-play"),
    path("s/<uuid:study_id>/api/trials/<uuid:trial_id>/answer", listener.api_answer, name="api-answer"),
    path("audio/<str:token>", audio.audio, name="audio"),
    path("staff/", staff.study_list, name="staff-list"),
    path("staff/new/", staff.study_create, name="staff-create"),
    path("staff/<uuid:study_id>/", staff.study_detail, name="staff-detail"),
    path("staff/<uuid:study_id>/status", staff.study_status, name="staff-status"),
    path("staff/<uuid:study_id>/render", staff.study_render_again, name="staff-render-again"),
    path("staff/<uuid:study_id>/export/<str:name>", staff.export_csv, name="staff-export"),
]

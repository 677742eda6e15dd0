from __future__ import annotations

from django.urls import include, path

from exceptions import views
from exceptions.views import case_file as case_file_views
from exceptions.views import events as event_views

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/bulk/", views.bulk, name="queue-bulk"),
    path("queue/jobs/<int:pk>/", views.bulk_progress, name="queue-job"),
    path("queue/groups/<str:fingerprint>/", views.group_members, name="queue-group"),
    path("queue/views/", views.saved_view_save, name="queue-view-save"),
    path("queue/views/<int:pk>/delete/", views.saved_view_delete, name="queue-view-delete"),
    path("exceptions/<int:pk>/", views.case_detail, name="case"),
    path("exceptions/<int:pk>/comment/", views.case_comment, name="case-comment"),
    path("exceptions/<int:pk>/preview/", views.case_preview, name="case-preview"),
    path("exceptions/<int:pk>/case-file/", case_file_views.case_case_file, name="case-case-file"),
    path(
        "exceptions/<int:pk>/case-file.json",
        case_file_views.case_case_file,
        {"as_json": True},
        name="case-case-file-json",
    ),
    path("exceptions/<int:pk>/<str:action>/", views.case_action, name="case-action"),
    path("events/<int:pk>/", views.event_detail, name="event"),
    path("events/<int:pk>/case-file/", case_file_views.event_case_file, name="event-case-file"),
    path(
        "events/<int:pk>/case-file.json",
        case_file_views.event_case_file_json,
        name="event-case-file-json",
    ),
    path("owners/", include("exceptions.owner_urls")),
    path("approvals/", include("exceptions.approvals.urls")),
    path("events/", event_views.event_list, name="events"),
    path(
        "events/<int:pk>/retry/", event_views.event_action, {"action": "retry"}, name="event-retry"
    ),
    path(
        "events/<int:pk>/replay/",
        event_views.event_action,
        {"action": "replay"},
        name="event-replay",
    ),
]

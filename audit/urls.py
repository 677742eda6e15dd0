from __future__ import annotations

from django.urls import path, re_path

from audit import views

urlpatterns = [
    path("audit/", views.trail, name="audit"),
    re_path(r"^audit/export\.(?P<fmt>jsonl|csv)$", views.export, name="audit-export"),
    re_path(
        r"^audit/export\.(?P<fmt>jsonl|csv)\.digest$",
        views.export_digest,
        name="audit-export-digest",
    ),
]

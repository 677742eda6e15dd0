"""Four-eyes approvals, under /approvals/."""

from __future__ import annotations

from django.urls import path

from exceptions.approvals import views

urlpatterns = [
    path("", views.approval_list, name="approvals"),
    path("<int:pk>/", views.approval_detail, name="approval"),
    path(
        "<int:pk>/approve/", views.approval_decide, {"decision": "approve"}, name="approval-approve"
    ),
    path("<int:pk>/reject/", views.approval_decide, {"decision": "reject"}, name="approval-reject"),
    path("<int:pk>/edit/", views.approval_edit, name="approval-edit"),
]

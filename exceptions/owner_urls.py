"""The owners pages, under /owners/."""

from __future__ import annotations

from django.urls import path

from exceptions import gap_views, owner_changes, owner_views, reason_views

urlpatterns = [
    path("", owner_views.owners_index, name="owners"),
    path("gaps/", gap_views.gaps_radar, name="owners-gaps"),
    path("reason-codes/", reason_views.reason_codes, name="reason-codes"),
    path("reason-codes/new/", reason_views.reason_code_new, name="reason-code-new"),
    path(
        "reason-codes/<slug:code>/retire/",
        reason_views.reason_code_retire_view,
        name="reason-code-retire",
    ),
    path("reassign/", gap_views.reassign, name="owners-reassign"),
    path("reassign/job/", gap_views.reassign_job, name="owners-reassign-job"),
    path("teams/new/", owner_changes.team_new, name="owners-team-new"),
    path("teams/<slug:slug>/", owner_views.team_detail, name="owners-team"),
    path("teams/<slug:slug>/rename/", owner_changes.team_rename_view, name="owners-team-rename"),
    path(
        "teams/<slug:slug>/deactivate/",
        owner_changes.team_deactivate_view,
        name="owners-team-deactivate",
    ),
    path("teams/<slug:slug>/members/", owner_changes.membership_add, name="owners-team-add"),
    path("memberships/<int:pk>/role/", owner_changes.membership_role, name="owners-role"),
    path("memberships/<int:pk>/end/", owner_changes.membership_stop, name="owners-end"),
    path("people/<str:username>/", owner_views.person_detail, name="owners-person"),
    path("people/<str:username>/join/", owner_changes.membership_join, name="owners-join"),
    path("people/<str:username>/leave/", owner_changes.person_leave, name="owners-leave"),
    path("people/<str:username>/emails/", owner_changes.emails_set, name="owners-emails"),
    path("workflows/<slug:slug>/", owner_views.workflow_ownership, name="owners-workflow"),
    path("workflows/<slug:slug>/set/", owner_changes.ownership_set, name="owners-workflow-set"),
]

from __future__ import annotations

from django.urls import path

from console.catalogue import views, whatif

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflows"),
    path("workflows/<slug:slug>/", views.workflow_detail, name="workflow"),
    path("workflows/<slug:slug>/simulate/", whatif.workflow_simulate, name="workflow-simulate"),
    path("workflows/<slug:slug>/readiness/", views.workflow_readiness, name="workflow-readiness"),
    path("readiness/", views.readiness_all, name="readiness"),
]

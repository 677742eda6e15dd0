from __future__ import annotations

from django.urls import path

from console.catalogue import samples, views, whatif

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflows"),
    path("workflows/<slug:slug>/", views.workflow_detail, name="workflow"),
    path("workflows/<slug:slug>/simulate/", whatif.workflow_simulate, name="workflow-simulate"),
    path("workflows/<slug:slug>/readiness/", views.workflow_readiness, name="workflow-readiness"),
    path("readiness/", views.readiness_all, name="readiness"),
    path("workflows/<slug:slug>/samples/", samples.sample_draw, name="sample-draw"),
    path("workflows/<slug:slug>/samples/<int:pk>/", samples.sample_review, name="sample-review"),
    path(
        "workflows/<slug:slug>/samples/<int:pk>/items/<int:item>/",
        samples.sample_mark,
        name="sample-mark",
    ),
]

from __future__ import annotations

from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.trail, name="audit"),
]

from __future__ import annotations

from django.urls import path

from console.outcomes import views

urlpatterns = [
    path("outcomes/", views.outcomes, name="outcomes"),
    path("outcomes/export.csv", views.outcomes_csv, name="outcomes-csv"),
]

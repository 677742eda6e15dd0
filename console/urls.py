from __future__ import annotations

from django.contrib import admin
from django.urls import path

from console import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler500 = "console.errors.server_error"

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from console import views
from console.api import api

urlpatterns = [
    path("", views.overview, name="overview"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("", include("audit.urls")),
    path("", include("exceptions.urls")),
    path("", include("console.outcomes.urls")),
    path("", include("console.catalogue.urls")),
    path("api/v1/", api.urls),
    # One sign-in page for everything, so every sign-in is throttled and audited the same way.
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(pattern_name="login", query_string=True)),
    ),
    # Before admin.site.urls, so a person changing their own password leaves an entry.
    path("admin/password_change/", views.admin_password_change, name="admin-password-change"),
    path("admin/", admin.site.urls),
]

handler500 = "console.errors.server_error"

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={k: v for k, v in {**os.environ, **env}.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_without_warnings() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="console.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="handoff.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_real_secret_key() -> None:
    result = manage(
        "check", DJANGO_SETTINGS_MODULE="console.settings.production", SECRET_KEY="short"
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def manage_without_servers(
    data_dir: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "HANDOFF_DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_that_need_no_server_run_without_one(tmp_path: Path) -> None:
    result = manage_without_servers(tmp_path, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_production_refuses_to_fall_back_to_embedded_servers(tmp_path: Path) -> None:
    result = manage_without_servers(
        tmp_path, "check", DJANGO_SETTINGS_MODULE="console.settings.production", SECRET_KEY="k" * 60
    )
    assert result.returncode != 0
    assert "DATABASE_URL must be set in production" in result.stderr


def test_a_bad_boolean_in_the_environment_is_a_clear_error() -> None:
    result = manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def broken_view(request):
    raise RuntimeError("secret internals")


urlpatterns = [path("boom/", broken_view)]
handler500 = "console.errors.server_error"


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_a_server_error_shows_a_plain_page_with_a_reference_not_a_traceback(operator) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.get("/boom/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "secret internals" not in html
    assert "Traceback" not in html
    assert response["X-Request-ID"] in html

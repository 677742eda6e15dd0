"""Pages show times in the display time zone (TIME_ZONE) and name it; case files and exports
are UTC and say so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db


def test_queue_times_are_in_the_display_zone_and_say_which(settings, client, operator) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30, no daylight saving
    opened = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    due = opened + timedelta(hours=5)
    case = factories.case(opened_at=opened, sla_due_at=due)
    client.force_login(operator)
    body = client.get("/queue/").content.decode()
    row = body[body.index(f'data-case="{case.pk}"') :]
    shift = timedelta(hours=5, minutes=30)
    assert f'datetime="{opened.isoformat()}"' in row
    assert f'title="Opened {opened + shift:%Y-%m-%d %H:%M} Asia/Kolkata"' in row
    assert f'title="Due {due + shift:%Y-%m-%d %H:%M} Asia/Kolkata"' in row


def test_a_case_page_names_the_zone_its_times_are_in(settings, client, operator) -> None:
    settings.TIME_ZONE = "Asia/Kolkata"
    opened = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=2)
    case = factories.case(opened_at=opened)
    client.force_login(operator)
    body = client.get(f"/exceptions/{case.pk}/").content.decode()
    shown = opened + timedelta(hours=5, minutes=30)
    assert f'title="{shown:%Y-%m-%d %H:%M} Asia/Kolkata"' in body
    assert " UTC" not in body.replace("UTC+", "")

"""Demo people for `make run`: one per role, with passwords kept under .data/, never in the repo."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.services import audit_record
from console import roles


@dataclass(frozen=True)
class DemoPerson:
    username: str
    first_name: str
    last_name: str
    role: str


DEMO_PEOPLE = (
    DemoPerson("olivia", "Olivia", "Okafor", roles.OPERATOR),
    DemoPerson("marcus", "Marcus", "Lindqvist", roles.MANAGER),
    DemoPerson("ada", "Ada", "Reyes", roles.ADMIN),
    DemoPerson("avery", "Avery", "Chen", roles.AUDITOR),
)


def _logins_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-logins.json"


@transaction.atomic
def demo_people_ensure() -> list[tuple[DemoPerson, str]]:
    """Create the demo people that are missing; return each with their password. Idempotent."""
    path = _logins_file()
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    user_model = get_user_model()
    result = []
    for person in DEMO_PEOPLE:
        user = user_model.objects.filter(username=person.username).first()
        password = stored.get(person.username)
        if user is None or password is None:
            password = secrets.token_urlsafe(9)
            created = user is None
            if user is None:
                user = user_model(username=person.username)
            user.first_name = person.first_name
            user.last_name = person.last_name
            user.email = f"{person.username}@example.com"
            user.is_staff = person.role == roles.ADMIN
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=person.role))
            audit_record(
                actor=None,
                action="user.create" if created else "user.password_reset",
                target=user,
                after={"username": user.username, "roles": [person.role], "demo": True},
                reason="demo data for make run",
            )
            stored[person.username] = password
        result.append((person, password))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return result

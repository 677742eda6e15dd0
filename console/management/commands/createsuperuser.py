"""Django's createsuperuser, with the new account on the audit trail in the same transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.db import transaction
from django.db.models import Max

from audit.services import audit_record
from console.admin import user_snapshot
from console.command_trail import command_actor


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        users = self.UserModel._default_manager.db_manager(database)
        with transaction.atomic(using=database):
            last = users.aggregate(last=Max("pk"))["last"] or 0
            super().handle(*args, **options)
            for user in users.filter(pk__gt=last):
                audit_record(
                    actor=command_actor("createsuperuser"),
                    action="user.create",
                    target=user,
                    after=user_snapshot(user),
                    reason="manage.py createsuperuser",
                )

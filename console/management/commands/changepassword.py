"""Django's changepassword, with the change (never the password) on the audit trail."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword
from django.db import transaction

from console.command_trail import command_actor
from console.services import password_change_recorded


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str:
        database = options["database"]
        username = options["username"] or getpass.getuser()
        users = get_user_model()._default_manager.db_manager(database)
        with transaction.atomic(using=database):
            before = users.filter(username=username).values_list("password", flat=True).first()
            result = super().handle(*args, **options)
            user = users.get(username=username)
            if user.password != before:
                password_change_recorded(
                    actor=command_actor("changepassword"),
                    target=user,
                    reason="manage.py changepassword",
                )
        return str(result)

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from console.demo import demo_people_ensure


class Command(BaseCommand):
    help = "Create the demo people (one per role) if missing and print their logins."

    def handle(self, *args: Any, **options: Any) -> None:
        people = demo_people_ensure()
        self.stdout.write("\nDemo logins for http://127.0.0.1:8000/accounts/login/\n")
        self.stdout.write(f"  {'role':<10} {'username':<10} password")
        for person, password in people:
            self.stdout.write(f"  {person.role:<10} {person.username:<10} {password}")
        self.stdout.write("")

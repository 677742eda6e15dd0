from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from console.demo.events import demo_events_ensure, demo_token_ensure
from console.demo.org import demo_org_ensure
from console.demo.ownership import demo_ownership_ensure
from console.demo.people import demo_people_ensure
from console.tasks import demo_triage


class Command(BaseCommand):
    help = (
        "Create what is missing of the demo data (people, one login per role, teams, three "
        "workflows) and print the logins. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        people = demo_people_ensure()
        for result in demo_org_ensure():
            self.stdout.write(result.describe())
        if demo_ownership_ensure():
            self.stdout.write("demo ownership history made")
        demo_token_ensure()
        created = demo_events_ensure()
        self.stdout.write(f"{created} demo events ingested" if created else "demo events present")
        if created:
            # Once the worker has run the new events, the demo people triage a few of them.
            demo_triage.apply_async(countdown=45)
        self.stdout.write("\nDemo logins for http://127.0.0.1:8000/accounts/login/\n")
        self.stdout.write(f"  {'role':<10} {'username':<10} password")
        for person, password in people:
            self.stdout.write(f"  {person.role:<10} {person.username:<10} {password}")
        self.stdout.write("")

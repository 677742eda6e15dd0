"""manage.py workflow_owner show|set: a workflow's owner and fallback chain, for scripts.

A change is asked for, not made: like the ownership panel's, it waits on /approvals/ for a second
person with the approver's role, in the name of the person the command runs for.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from exceptions.approvals.services import ApprovalRefused, approval_for_ownership
from workflows.four_eyes import ApprovalRequired
from workflows.models import Workflow
from workflows.ownership import ownership_in_force
from workflows.services.ownership import workflow_ownership_set
from workflows.services.teams import OwnersRefused


def workflow_named(slug: str) -> Workflow:
    workflow = Workflow.objects.filter(slug=slug).first()
    if workflow is None:
        raise CommandError(f"There is no workflow {slug!r}.")
    return workflow


class Command(BaseCommand):
    help = (
        "Show a workflow's owner team and ordered fallback chain, or ask for a change as the "
        "console's ownership panel does: a second person approves it on /approvals/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        show = actions.add_parser("show", help="the owner lines in force now and where from")
        show.add_argument("slug")
        change = actions.add_parser("set", help="a new owner and fallback chain")
        change.add_argument("slug")
        change.add_argument("--owner", required=True, help="the owner team's slug")
        change.add_argument(
            "--fallback",
            default="",
            help="fallback team slugs in order, comma-separated (empty: no fallback)",
        )
        change.add_argument("--reason", required=True)
        change.add_argument(
            "--requested-by",
            required=True,
            help="the login of the person asking (they cannot approve it themselves)",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        workflow = workflow_named(options["slug"])
        if action == "set":
            self._ask(workflow, options)
        self._show(workflow)

    def _ask(self, workflow: Workflow, options: dict[str, Any]) -> None:
        person = get_user_model().objects.filter(username=options["requested_by"]).first()
        if person is None or not person.is_active:
            raise CommandError(f"There is no active person called {options['requested_by']!r}.")
        owner = options["owner"].strip()
        fallbacks = [slug.strip() for slug in options["fallback"].split(",") if slug.strip()]
        try:
            workflow_ownership_set(
                workflow=workflow,
                owner=owner,
                fallback_owners=fallbacks,
                actor=person,
                reason=options["reason"],
            )
        except ApprovalRequired as required:
            try:
                approval = approval_for_ownership(
                    required=required,
                    workflow=workflow,
                    actor=person,
                    owner=owner,
                    fallback_owners=fallbacks,
                    reason=options["reason"],
                )
            except ApprovalRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{required} Asked as approval request #{approval.pk}: /approvals/{approval.pk}/"
            )
        except OwnersRefused as exc:
            raise CommandError(str(exc)) from exc

    def _show(self, workflow: Workflow) -> None:
        record = ownership_in_force(workflow_id=workflow.pk, at=timezone.now())
        if record is None:
            self.stdout.write(f"{workflow.slug}: no ownership recorded")
            return
        chain = " -> ".join(record.fallback_owners) or "none"
        self.stdout.write(
            f"{workflow.slug}: owner {record.owner}; fallback {chain} "
            f"(source: {record.source}, since {record.valid_from:%Y-%m-%d %H:%M})"
        )

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.definition_files import max_definition_bytes
from workflows.definitions import DefinitionError
from workflows.models import Workflow
from workflows.simulation import ASPECTS, DEFAULT_LAST, MAX_LAST, definitions_check, draft_simulate


class Command(BaseCommand):
    help = (
        "Run a draft definition's validate, enrich, route and review steps (the engine's dry "
        "run) on the workflow's last N events, beside its current version, and report what "
        "would be decided differently. Nothing is saved or sent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--last", type=int, default=DEFAULT_LAST, help=f"at most {MAX_LAST}")

    def handle(self, *args: Any, file: Path, last: int, **options: Any) -> None:
        try:
            with file.open("rb") as handle:
                text = handle.read(max_definition_bytes() + 1)
        except OSError as exc:
            raise CommandError(f"{file}: cannot read: {exc}") from exc
        try:
            (checked,) = definitions_check(sources=[(str(file), text)])
        except DefinitionError as exc:
            raise CommandError(f"not valid: {len(exc.problems)} problem(s)\n{exc}") from exc
        workflow = Workflow.objects.filter(slug=checked.slug).first()
        if workflow is None or workflow.current_version is None:
            raise CommandError(f"{checked.slug}: no such workflow yet, so no events to run")
        result = draft_simulate(workflow=workflow, definition=checked.definition, last=last)
        self.stdout.write(
            f"{workflow.slug}: draft (as v{result.draft}) against v{result.current} on the last "
            f"{result.compared} events: {result.changed} decided differently"
        )
        for aspect in ASPECTS:
            self.stdout.write(f"  {aspect} differently: {result.counts[aspect]}")
            for difference in result.examples(aspect):
                self.stdout.write(
                    f"    event {difference.event_id}: {difference.before} -> {difference.after}"
                )
        self.stdout.write("simulated only: nothing was saved or sent")

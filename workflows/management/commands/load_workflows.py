from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actors import Actor
from workflows.definition_files import max_definition_bytes
from workflows.definitions import DefinitionError
from workflows.services.definitions import workflows_load
from workflows.simulation import definitions_check


class Command(BaseCommand):
    help = (
        "Load workflow definitions from YAML files. Same content: no new version; changed "
        "content: version N+1. Any bad file refuses the whole load, naming file, line and reason, "
        "and the command exits non-zero."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument(
            "--check",
            action="store_true",
            help="validate the files as a load would and say what loading them would do; "
            "save nothing",
        )

    def handle(self, *args: Any, files: list[Path], check: bool = False, **options: Any) -> None:
        # Bytes, not text: the loader names the line of a byte that is not UTF-8. One byte past
        # the cap is enough to refuse a file without reading all of it.
        limit = max_definition_bytes()
        sources: list[tuple[str, str | bytes]] = []
        for path in files:
            try:
                with path.open("rb") as handle:
                    sources.append((str(path), handle.read(limit + 1)))
            except OSError as exc:
                raise CommandError(f"{path}: cannot read: {exc}") from exc
        if check:
            self._check(sources)
            return
        actor = Actor(kind="system", label=f"cli:{getpass.getuser()}")
        try:
            results = workflows_load(sources=sources, actor=actor)
        except DefinitionError as exc:
            raise CommandError(f"nothing loaded: {len(exc.problems)} problem(s)\n{exc}") from exc
        for result in results:
            self.stdout.write(result.describe())

    def _check(self, sources: list[tuple[str, str | bytes]]) -> None:
        try:
            results = definitions_check(sources=sources)
        except DefinitionError as exc:
            raise CommandError(f"not valid: {len(exc.problems)} problem(s)\n{exc}") from exc
        for result in results:
            self.stdout.write(result.describe())
        self.stdout.write("checked only: nothing was saved")

"""Reading a definition file as untrusted input: its size, its encoding, and YAML that cannot
expand. Values come back with the line each was written on, for problems to name.

PyYAML composes the document node by node; anchors and aliases are refused at the event that
carries them, before any alias is expanded, so an alias bomb or a recursive alias costs nothing.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings

DEFAULT_MAX_DEFINITION_BYTES = 256 * 1024
MAX_NESTING = 10  # the schema itself needs 4 levels

Lines = dict[tuple[Any, ...], int]


class FileRefused(Exception):
    """A file that cannot be read as a definition at all: the line and the reason."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


def max_definition_bytes() -> int:
    return int(getattr(settings, "HANDOFF_MAX_DEFINITION_BYTES", DEFAULT_MAX_DEFINITION_BYTES))


class _DefinitionLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors, aliases and deep nesting as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise FileRefused(line, "YAML anchors and aliases are not allowed: write the value out")
        if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise FileRefused(line, f"nested more than {MAX_NESTING} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _to_python(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    lines: Lines,
    path: tuple[Any, ...],
) -> Any:
    """Plain Python values from a YAML node, recording each value's line under its path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, scalar=True)
            result[key] = _to_python(loader, value_node, lines, (*path, key))
            lines[(*path, key, "__key__")] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, lines, (*path, i)) for i, item in enumerate(node.value)]
    return _construct(loader, node, scalar=False)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, *, scalar: bool) -> Any:
    """One scalar's value; a tag, a number or a date Python cannot hold is a refusal."""
    try:
        if scalar:
            # A key that is a list or a mapping makes PyYAML raise ConstructorError: a refusal.
            return loader.construct_scalar(node)  # type: ignore[arg-type]
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileRefused(node.start_mark.line + 1, f"not valid YAML: {reason}") from exc


def read_definition(text: str | bytes) -> tuple[Any, Lines]:
    """Plain values and their lines from the file's bytes or text, within the caps."""
    limit = max_definition_bytes()
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise FileRefused(1, f"the file is more than the {limit} bytes a definition may be")
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise FileRefused(
                line, f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be read; save it as UTF-8"
            ) from None
    loader = None
    try:
        loader = _DefinitionLoader(text)  # reading starts here: it refuses control characters
        node = loader.get_single_node()
        if node is None:
            raise FileRefused(1, "the file is empty")
        lines: Lines = {}
        return _to_python(loader, node, lines, ()), lines
    except yaml.YAMLError as exc:
        raise FileRefused(_error_line(exc, text), f"not valid YAML: {_reason(exc)}") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
    return text[:position].count("\n") + 1 if isinstance(position, int) else 1


def _reason(exc: yaml.YAMLError) -> str:
    return getattr(exc, "problem", None) or str(exc).splitlines()[0]

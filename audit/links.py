"""Where an entry's object can be seen: the apps above register their pages here.

The audit app depends on nothing of ours, so it cannot reverse a case's URL itself; the app that
owns cases tells it how, as workflows tells it people's memberships (audit.actors).
"""

from __future__ import annotations

from collections.abc import Callable

_links: dict[str, Callable[[str], str]] = {}


def register_object_link(object_type: str, link: Callable[[str], str]) -> None:
    """link(object_id) -> the URL of the page that shows that object."""
    _links[object_type] = link


def object_link(object_type: str, object_id: str) -> str:
    link = _links.get(object_type)
    if link is None or not object_id.isdigit():
        return ""
    return link(object_id)

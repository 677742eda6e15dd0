"""Helpers shared by the API tests."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from django.test import Client


def definition(slug: str, owner: str) -> dict[str, Any]:
    """A minimal normalized definition: every event routes to the owner, no action."""
    return {
        "slug": slug,
        "name": slug.replace("-", " ").capitalize(),
        "owner": owner,
        "fallback_owners": [],
        "required_fields": [],
        "enrich": [],
        "routes": [{"name": "default", "when": "true", "owner": owner}],
        "review": [],
        "action": {"type": "none"},
        "retry": {"schedule": [5, 300]},
        "outcome": {"confirm_within": None},
        "sla": {"acknowledge_within": None, "resolve_within": None},
    }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Api:
    """The test client, speaking to /api/v1/ with a bearer token and JSON bodies."""

    def __init__(self, client: Client, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged.update(headers or {})
        return merged

    def get(self, path: str, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        return self.client.get(f"/api/v1{path}", headers=headers, **kwargs)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(
            f"/api/v1{path}",
            data=data,
            content_type=content_type,
            headers=self._headers(headers),
            **extra,
        )

    def as_token(self, token: str | None) -> Api:
        return Api(self.client, token)


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]

"""The API's test client and its error shape."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


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

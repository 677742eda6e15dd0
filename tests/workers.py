"""What tests need to start real worker processes against the test run's own database."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection


def subprocess_database_url() -> str:
    """A DATABASE_URL for the test database (not the configured one), for a subprocess.

    The server may be reached over TCP or, for the embedded server, a unix socket directory
    (given as HOST or as the "host" option); a socket path goes percent-encoded in the host.
    """
    conf = connection.settings_dict
    auth = quote(conf.get("USER") or "", safe="")
    if conf.get("PASSWORD"):
        auth += ":" + quote(str(conf["PASSWORD"]), safe="")
    host = conf.get("HOST") or conf.get("OPTIONS", {}).get("host") or "127.0.0.1"
    socket_dir = host.startswith("/")
    netloc = quote(host, safe="") if socket_dir else f"{host}:{conf.get('PORT') or 5432}"
    return f"postgres://{auth}@{netloc}/{quote(conf['NAME'], safe='')}"

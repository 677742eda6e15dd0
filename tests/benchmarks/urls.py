"""The console's URLs plus /bench/raw-insert: one JSON parse and one raw INSERT, nothing else.

It is the floor an ingest endpoint is measured against: same server, same database, same
payload, none of the auth, idempotency, validation or audit work.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from console.urls import urlpatterns as console_urlpatterns


@csrf_exempt
@login_not_required
@require_POST
def raw_insert(request: HttpRequest) -> HttpResponse:
    payload = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_raw_event (payload) VALUES (%s) RETURNING id", [json.dumps(payload)]
        )
        (event_id,) = cursor.fetchone()
    return JsonResponse({"id": event_id}, status=202)


urlpatterns = [path("bench/raw-insert", raw_insert), *console_urlpatterns]

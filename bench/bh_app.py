"""Bh's server: a standalone minimal Django project in one module, none of Proctor's apps.

Served by uvicorn as ``bench.bh_app:application`` with DATABASE_URL in the environment.
``POST /commit`` inserts one ~300-byte row (raw SQL through ``django.db.connection``,
autocommit, so the INSERT is committed before the response) and answers 204.

BH_POOL=1 (the default) uses Django's psycopg connection pool, the cheapest way to reach
Postgres from an ASGI Django; BH_POOL=0 uses a plain connection with CONN_MAX_AGE=0, i.e.
a fresh connection per request (Django's default).
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from console.env import database_from_url

PAYLOAD = "x" * 300
TABLE = "bench_bh"


def _database(url: str, pooled: bool) -> dict:
    database = {**database_from_url(url), "CONN_MAX_AGE": 0}  # the project's own URL parsing
    if pooled:
        database["OPTIONS"]["pool"] = {"min_size": 2, "max_size": 4}
    return database


@csrf_exempt
def commit(request):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (payload) VALUES (%s)", [PAYLOAD])
    return HttpResponse(status=204)


urlpatterns = [path("commit", commit)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={"default": _database(os.environ["DATABASE_URL"], os.environ.get("BH_POOL", "1") == "1")},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()

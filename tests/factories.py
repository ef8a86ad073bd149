"""Plain factory functions: the standing cast of the tests."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from console.models import Membership, Role, Tenant

PASSWORD = "correct horse battery"


def make_tenant(slug: str, name: str | None = None) -> Tenant:
    return Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug.title()})[0]


@cache
def password_hash() -> str:
    return make_password(PASSWORD)  # hashing is slow on purpose: do it once per test session


def make_user(username: str, memberships: dict[Tenant, Role] | None = None, **extra):
    user = get_user_model().objects.create(username=username, password=password_hash(), **extra)
    for tenant, role in (memberships or {}).items():
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


RENEWAL_GOAL = "Prepare the renewal plan for account ACME-042 and email it to its success manager"
STOPS = ("waiting_for_human", "completed", "failed", "cancelled")


def make_looper(tenant, *, model: str = "demo:noop", **extra):
    """An agent that calls the no-op tool as many times as its goal says ("Call noop 3 times")."""
    from agents.models import Agent

    return Agent.objects.create(tenant=tenant, name="Looper", slug="looper", instructions="Call noop.", model=model,
                                tools=["noop"], plan_mode=False, **extra)


def advance(run, until=STOPS):
    """Step a run in this process (no worker) until it stops at one of ``until``; the run, refreshed."""
    from agents.services import run_advance

    for _ in range(20):
        if run_advance(run_id=run.pk, worker="w1") in until:
            break
    run.refresh_from_db()
    return run

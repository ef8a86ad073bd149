"""The Memory page's live "To confirm" badge: after a commit that changes what waits for confirmation in a
tenant, its sockets hear "memory changed" and each counts again what its own person may confirm."""

from __future__ import annotations

from channels.layers import get_channel_layer
from django.db import transaction

from console import aio


def memory_group(tenant_id: int) -> str:
    return f"memory-{tenant_id}"


def publish_memory_changed_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: aio.submit(
        get_channel_layer().group_send(memory_group(tenant_id), {"type": "memory.changed"}),
        f"publish memory {tenant_id}"))


def render_badge(*, membership) -> dict:
    from memory.selectors import to_confirm_count

    return {"count": to_confirm_count(membership.tenant, membership.user, membership.role)}

"""Live spend: after a ledger write commits, the tenant's costs group hears "spend changed", at most about
once a second per tenant and process (changes within the second collapse into one message sent at its end,
so the last change is never lost), and each open dashboard re-fetches its panels: the same partial the page
renders. The database stays the truth; the page's slow poll covers a message lost on the way."""

from __future__ import annotations

import asyncio
import threading
import time

from channels.layers import get_channel_layer
from django.db import transaction

from console import aio

THROTTLE_SECONDS = 1.0
_lock = threading.Lock()
_sent_at: dict[int, float] = {}  # tenant id → when this process last told its group (time.monotonic)
_due: set[int] = set()  # tenants with a message on its way


def costs_group(tenant_id: int) -> str:
    return f"costs-{tenant_id}"


def spend_changed_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: spend_changed(tenant_id))


def spend_changed(tenant_id: int) -> None:
    """Tell the tenant's dashboards now, or at the end of the second since they were last told."""
    with _lock:
        if tenant_id in _due:
            return
        _due.add(tenant_id)
        wait = _sent_at.get(tenant_id, -THROTTLE_SECONDS) + THROTTLE_SECONDS - time.monotonic()
    aio.submit(_publish(tenant_id, max(0.0, wait)), f"publish the spend of tenant {tenant_id}")


async def _publish(tenant_id: int, wait: float) -> None:
    if wait:
        await asyncio.sleep(wait)
    with _lock:
        _due.discard(tenant_id)
        _sent_at[tenant_id] = time.monotonic()
    await get_channel_layer().group_send(costs_group(tenant_id), {"type": "spend.changed"})

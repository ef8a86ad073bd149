"""Secrets kept in the database (an MCP server's headers or bearer token) are encrypted with Fernet
(cryptography: authenticated encryption, well kept, not ours to get right) under SECRETS_KEYS from the
environment. The first key encrypts, every key decrypts, so keys rotate: put a new key first, run
`manage.py rotate_secrets` (re-encrypts every secret with it), then remove the old key."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """Encrypted under a key that is no longer configured."""


def _box() -> MultiFernet:
    if not settings.SECRETS_KEYS:
        raise ImproperlyConfigured("Set SECRETS_KEYS to keep secrets (one key: python -c 'from cryptography.fernet "
                                   "import Fernet; print(Fernet.generate_key().decode())').")
    return MultiFernet([Fernet(key.encode()) for key in settings.SECRETS_KEYS])


def seal(value: dict) -> str:
    return _box().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def unseal(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_box().decrypt(token.encode()))
    except InvalidToken:
        raise SecretUnreadable("The secret was encrypted with a key that is no longer configured; set it again.") from None


def reseal(token: str) -> str:
    """The same secret under the first key (rotation)."""
    return _box().rotate(token.encode()).decode() if token else token

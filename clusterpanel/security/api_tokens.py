"""Issuing and revoking API tokens, each audited with its actor."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from clusterpanel.models import ApiToken
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor


@transaction.atomic
def issue_api_token(user: Any, actor: Actor, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user`` and its key, which is never shown again."""
    token, key = ApiToken.issue(user, name=name)
    audit.record("api_token.issue", actor, obj=token, details={"via": actor.via})
    return token, key


@transaction.atomic
def revoke_api_token(token: ApiToken, actor: Actor) -> bool:
    """Revoke ``token``; False if it was revoked already (nothing is recorded then)."""
    if token.revoked_at is not None:
        return False
    token.revoke()
    audit.record("api_token.revoke", actor, obj=token)
    return True

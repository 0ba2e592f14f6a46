"""The syntax of the Kubernetes principals the panel hands out: user names, uids, group names and
bearer token values. One rule per kind of value, used wherever the value is typed: the kubeconfig
form and API (a client certificate's CN and O), the static token file (user, uid, groups, token)
and bootstrap tokens' extra groups (which kubeadm restricts further).

Each function returns the value or raises ``PrincipalError`` whose message names no field; callers
put it on theirs. Which groups a user may be given is policy, decided elsewhere.
"""

from __future__ import annotations

import re

from clusterpanel.errors import InputError

MAX_USER_NAME = 48
# kubeadm's longest bootstrap-token group (system:bootstrappers: and 256 more) fits.
MAX_GROUP_NAME = 280
MAX_TOKEN_LENGTH = 1024

# Letters, digits and the punctuation Kubernetes user names use (alice@example.com,
# system:node:cp-1, ci+deploy); no spaces, quotes, commas or markup.
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:+-]*")
# Group names may also hold '/' (oidc:org/team).
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:+/-]*")
# RFC 6750 b64token: what a bearer token in an Authorization header may hold.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class PrincipalError(InputError):
    """A user name, uid, group name or token value of the wrong syntax."""


def user_name(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_USER_NAME or not _USER_NAME.fullmatch(value):
        raise PrincipalError(
            f"a user name is 1-{MAX_USER_NAME} characters: letters, digits and @ . _ : + -"
        )
    return value


def uid(value: object) -> str:
    """A user's uid: the same characters as a user name, and never empty."""
    if not isinstance(value, str) or len(value) > MAX_USER_NAME or not _USER_NAME.fullmatch(value):
        raise PrincipalError(
            f"a uid is 1-{MAX_USER_NAME} characters: letters, digits and @ . _ : + -"
        )
    return value


def group_name(value: object) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_GROUP_NAME
        or not _GROUP_NAME.fullmatch(value)
    ):
        shown = repr(value[:40]) if isinstance(value, str) else "a group"
        raise PrincipalError(
            f"{shown} is not a valid group name: 1-{MAX_GROUP_NAME} characters, letters, "
            "digits and @ . _ : + / -"
        )
    return value


def token_value(value: object) -> str:
    """A bearer token as it travels in ``Authorization: Bearer …`` (RFC 6750)."""
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(value):
        # Never echo the value: it is a credential.
        raise PrincipalError(
            f"a token is 1-{MAX_TOKEN_LENGTH} characters: letters, digits and - . _ ~ + / "
            "(then any '='), as a bearer token"
        )
    return value

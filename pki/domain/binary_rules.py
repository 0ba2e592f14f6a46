"""What the settings of a binary-installed cluster may hold, and the import of ``ca-config.json``.

Every value here ends up in a systemd unit, a flag or a shell command run as root on the nodes,
so paths are absolute, normalised POSIX paths without ``..``, whitespace or shell metacharacters;
the service user is a POSIX user name; the NodePort range is ``a-b``; the ipvs scheduler is one
kube-proxy knows; signing profiles are cfssl's (usages from cfssl's list, expiry a Go duration).
Errors are ``SettingError`` naming the field, or for profiles the JSON path at fault.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from clusterpanel.errors import InputError
from pki.domain import cfssl
from pki.domain.binary_layout import PROFILES
from pki.domain.binary_plan import profile_usages

# kube-proxy's --ipvs-scheduler values (the kernel's IPVS schedulers it documents).
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq")
MAX_PATH = 255
MAX_PROFILES = 16
MAX_USAGES = 16
# The size of a ca-config.json worth reading; real ones are a few hundred bytes.
MAX_CA_CONFIG = 64 * 1024

# Letters, digits and / . _ - only: nothing a shell or systemd would read as syntax.
_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
# POSIX portable user names (useradd's default rule): no leading dash or digit-only names.
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_PORT_RANGE = re.compile(r"([0-9]{1,5})-([0-9]{1,5})")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class SettingError(InputError):
    """A setting of the wrong form; ``field`` names it (for profiles: the JSON path)."""


def path(value: object, field: str) -> str:
    """An absolute, normalised POSIX path of safe characters (``/opt/kubernetes``)."""
    if not isinstance(value, str) or not value:
        raise SettingError("give an absolute path such as /etc/k8s/ssl", field)
    if len(value) > MAX_PATH:
        raise SettingError(f"a path is at most {MAX_PATH} characters", field)
    if not _PATH.fullmatch(value):
        raise SettingError(
            "an absolute path of letters, digits and / . _ - only (no spaces, quotes or shell "
            "characters)",
            field,
        )
    if ".." in value.split("/"):
        raise SettingError("a path may not contain '..'", field)
    if value == "/" or posixpath.normpath(value) != value:
        raise SettingError(
            f"write the path normalised, as {posixpath.normpath(value)!r}"
            if value != "/"
            else "the root directory cannot hold the cluster's files",
            field,
        )
    return value


def service_user(value: object, field: str = "service_user") -> str:
    """A POSIX user name (lower case, digits, ``_`` and ``-``; at most 32 characters)."""
    if not isinstance(value, str) or not _USER.fullmatch(value):
        raise SettingError(
            "a user name of 1-32 characters: lower-case letters, digits, _ and -, starting with "
            "a letter or _",
            field,
        )
    return value


def port_range(value: object, field: str = "service_node_port_range") -> str:
    """``a-b`` with 1 <= a < b <= 65535 (kube-apiserver's --service-node-port-range)."""
    match = _PORT_RANGE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SettingError("a port range such as 30000-32767", field)
    low, high = int(match.group(1)), int(match.group(2))
    if not 1 <= low < high <= 65535:
        raise SettingError("the range is a-b with 1 <= a < b <= 65535", field)
    return f"{low}-{high}"


def ipvs_scheduler(value: object, field: str = "ipvs_scheduler") -> str:
    if value not in IPVS_SCHEDULERS:
        raise SettingError(
            f"one of kube-proxy's ipvs schedulers: {', '.join(IPVS_SCHEDULERS)}", field
        )
    return str(value)


def signing_profiles(
    value: object, field: str = "signing_profiles", where: str = ""
) -> dict[str, dict[str, Any]]:
    """cfssl ``signing.profiles``: ``{name: {"usages": [...], "expiry": "8760h"}}``.

    The plan's ``server``, ``client`` and ``peer`` profiles must grant the extended key usage
    their certificates are used for. Errors name the JSON path (``where`` is its prefix, e.g.
    ``signing.profiles``) in the message; ``field`` is the form or API field.
    """
    prefix = where or "signing_profiles"
    if not isinstance(value, Mapping):
        raise SettingError(f"{prefix}: an object of named profiles", field)
    if len(value) > MAX_PROFILES:
        raise SettingError(f"{prefix}: at most {MAX_PROFILES} profiles", field)
    out: dict[str, dict[str, Any]] = {}
    for name, profile in value.items():
        here = f"{prefix}.{name}"
        if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name):
            raise SettingError(
                f"{prefix}: profile names are letters, digits, . _ - (at most 63)", field
            )
        if not isinstance(profile, Mapping):
            raise SettingError(f"{here}: an object with 'usages' and 'expiry'", field)
        unknown = sorted(set(profile) - {"usages", "expiry"})
        if unknown:
            raise SettingError(f"{here}.{unknown[0]}: only 'usages' and 'expiry' are kept", field)
        out[name] = {
            "usages": _usages(profile.get("usages"), f"{here}.usages", field),
            "expiry": _expiry(profile.get("expiry"), f"{here}.expiry", field),
        }
    for name in PROFILES:
        if name not in out:
            continue
        try:
            profile_usages(name, parsed_profile(out[name]))
        except InputError as error:
            raise SettingError(f"{prefix}.{name}.usages: {error}", field) from None
    return out


def _usages(value: object, here: str, field: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise SettingError(f'{here}: a list of cfssl usages such as ["server auth"]', field)
    if len(value) > MAX_USAGES:
        raise SettingError(f"{here}: at most {MAX_USAGES} usages", field)
    known = {*cfssl.KEY_USAGES, *cfssl.EXT_KEY_USAGES}
    for index, usage in enumerate(value):
        if not isinstance(usage, str) or usage not in known:
            shown = repr(usage)[:40]
            raise SettingError(
                f"{here}[{index}]: unknown usage {shown}; cfssl knows: {', '.join(sorted(known))}",
                field,
            )
    return list(dict.fromkeys(value))


def _expiry(value: object, here: str, field: str) -> str:
    if not isinstance(value, str):
        raise SettingError(f'{here}: a Go duration such as "175200h"', field)
    try:
        cfssl.parse_duration(value)
    except InputError as error:
        raise SettingError(f"{here}: {error}", field) from None
    return value


def parsed_profile(profile: Mapping[str, Any]) -> cfssl.SigningProfile:
    """A validated profile as the plan reads it."""
    return cfssl.SigningProfile(
        tuple(profile["usages"]), cfssl.parse_duration(str(profile["expiry"]))
    )


def parsed_profiles(profiles: Mapping[str, Any]) -> dict[str, cfssl.SigningProfile]:
    """Stored ``signing_profiles`` (validated again) as ``SigningProfile`` values."""
    return {name: parsed_profile(p) for name, p in signing_profiles(profiles).items()}


def _usages_and_expiry(profile: object) -> object:
    if not isinstance(profile, dict):
        return profile
    return {k: v for k, v in profile.items() if k in ("usages", "expiry")}


def profiles_from_ca_config(text: str | bytes, field: str = "ca_config") -> dict[str, Any]:
    """``signing.profiles`` of a cfssl ``ca-config.json``, validated; errors name the JSON path.

    ``signing.default`` is not a profile the plan signs with and is left out; what cfssl itself
    refuses (``parse_ca_config``) is refused too.
    """
    if len(text) > MAX_CA_CONFIG:
        raise SettingError(f"a ca-config.json is at most {MAX_CA_CONFIG // 1024} KiB", field)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        where = f" (line {error.lineno}, column {error.colno})"
        raise SettingError(f"$: the file is not JSON{where}", field) from None
    except (ValueError, UnicodeDecodeError):
        raise SettingError("$: the file is not JSON text", field) from None
    if not isinstance(document, dict):
        raise SettingError("$: the file must hold a JSON object", field)
    signing = document.get("signing")
    if not isinstance(signing, dict):
        raise SettingError("signing: the file has no 'signing' object", field)
    if "profiles" not in signing:
        raise SettingError("signing.profiles: the file names no signing profiles", field)
    found = signing["profiles"]
    if isinstance(found, dict):
        # Only usages and expiry are kept: the other keys of a profile (auth_key, name_whitelist,
        # ca_constraint …) are cfssl server settings the plan has no use for.
        found = {name: _usages_and_expiry(p) for name, p in found.items()}
    profiles = signing_profiles(found, field, "signing.profiles")
    try:
        cfssl.parse_ca_config(text)
    except InputError as error:
        raise SettingError(f"signing: {error}", field) from None
    return profiles

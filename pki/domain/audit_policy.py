"""The kube-apiserver audit policy (``audit.k8s.io/v1`` Policy) and its validation.

The default policy keeps the log useful and small: it drops high-volume, low-value traffic
(kube-proxy and node watches, leader-election leases, events, health probes, reads by control-plane
components), records only metadata where bodies carry credentials (Secrets, ConfigMaps, token
reviews and token requests), the request for other reads, and request and response for every
change. Rules are evaluated in order and the first match decides, so the drops come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from clusterpanel.errors import InputError
from pki.domain.yaml import load_document

AUDIT_API_VERSION = "audit.k8s.io/v1"
VALID_LEVELS: tuple[str, ...] = ("None", "Metadata", "Request", "RequestResponse")
VALID_STAGES: tuple[str, ...] = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_POLICY_KEYS = frozenset({"apiVersion", "kind", "metadata", "rules", "omitStages"})
_POLICY_KEYS_OPTIONAL = frozenset({"omitManagedFields"})
_RULE_KEYS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)
_GROUP_RESOURCES_KEYS = frozenset({"group", "resources", "resourceNames"})
_LIST_OF_STRINGS = ("users", "userGroups", "verbs", "namespaces", "nonResourceURLs")

DEFAULT_AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# The RequestReceived stage only duplicates the ResponseComplete event.
omitStages:
  - RequestReceived
rules:
  # kube-proxy watches Services and EndpointSlices on every node, all the time.
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
      - group: ""
        resources: ["endpoints", "services", "services/status"]
      - group: "discovery.k8s.io"
        resources: ["endpointslices"]
  # Kubelets read their own Node object constantly.
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get"]
    resources:
      - group: ""
        resources: ["nodes", "nodes/status"]
  # Leader election and node heartbeats renew leases every few seconds.
  - level: None
    verbs: ["get", "update"]
    resources:
      - group: "coordination.k8s.io"
        resources: ["leases"]
  # Events are already a record of what happened.
  - level: None
    resources:
      - group: ""
        resources: ["events"]
      - group: "events.k8s.io"
        resources: ["events"]
  # Health probes and version checks from load balancers and monitoring.
  - level: None
    nonResourceURLs:
      - "/healthz*"
      - "/livez*"
      - "/readyz*"
      - "/version"
      - "/metrics"
  # Reads by the control-plane components themselves.
  - level: None
    users:
      - "system:kube-controller-manager"
      - "system:kube-scheduler"
      - "system:apiserver"
    verbs: ["get", "list", "watch"]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get", "list", "watch"]
  # Bodies of these carry credentials: never log more than metadata.
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps", "serviceaccounts/token"]
      - group: "authentication.k8s.io"
        resources: ["tokenreviews"]
  # Other reads: who asked for what.
  - level: Request
    verbs: ["get", "list", "watch"]
  # Every change elsewhere: the request and what the server answered.
  - level: RequestResponse
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  # Anything left (for example other non-resource requests).
  - level: Metadata
"""


class AuditPolicyError(InputError):
    """An audit policy the API server would refuse; the message names the rule and field."""


def _check_string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AuditPolicyError(f"{where}: must be a list of strings")
    return value


def _check_stages(value: Any, where: str) -> None:
    for stage in _check_string_list(value, where):
        if stage not in VALID_STAGES:
            raise AuditPolicyError(f"{where}: {stage!r} is not one of {', '.join(VALID_STAGES)}")


def _check_resources(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise AuditPolicyError(f"{where}: must be a list")
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise AuditPolicyError(f"{here}: must be a mapping")
        unknown = sorted(set(entry) - _GROUP_RESOURCES_KEYS)
        if unknown:
            raise AuditPolicyError(f"{here}: unknown field {unknown[0]!r}")
        if "group" in entry and not isinstance(entry["group"], str):
            raise AuditPolicyError(f"{here}.group: must be a string")
        for key in ("resources", "resourceNames"):
            if key in entry:
                _check_string_list(entry[key], f"{here}.{key}")


def _check_non_resource_urls(urls: list[str], where: str) -> None:
    for url in urls:
        # The API server allows a "*" only as the last character of a path.
        if not url.startswith("/") or "*" in url[:-1]:
            raise AuditPolicyError(f"{where}: {url!r} must be a path with at most a trailing *")


def _check_rule(rule: Any, index: int) -> None:
    where = f"rules[{index}]"
    if not isinstance(rule, Mapping):
        raise AuditPolicyError(f"{where}: must be a mapping")
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        raise AuditPolicyError(f"{where}: unknown field {unknown[0]!r}")
    if rule.get("level") not in VALID_LEVELS:
        raise AuditPolicyError(f"{where}.level: must be one of {', '.join(VALID_LEVELS)}")
    for key in _LIST_OF_STRINGS:
        if key in rule:
            _check_string_list(rule[key], f"{where}.{key}")
    if "resources" in rule:
        _check_resources(rule["resources"], f"{where}.resources")
    if "omitStages" in rule:
        _check_stages(rule["omitStages"], f"{where}.omitStages")
    if rule.get("nonResourceURLs"):
        if rule.get("resources") or rule.get("namespaces"):
            raise AuditPolicyError(
                f"{where}: nonResourceURLs cannot be combined with resources or namespaces"
            )
        _check_non_resource_urls(rule["nonResourceURLs"], f"{where}.nonResourceURLs")


# Policies are a few KiB; the API server reads this file at every start.
MAX_POLICY_LENGTH = 64 * 1024


def validate_audit_policy(text: str) -> dict[str, Any]:
    """Parse and check a policy; return it as a dict or raise :class:`AuditPolicyError`."""
    if isinstance(text, str) and len(text) > MAX_POLICY_LENGTH:
        raise AuditPolicyError(f"policy: must be at most {MAX_POLICY_LENGTH} characters")
    try:
        policy = load_document(text)
    except yaml.YAMLError as error:
        raise AuditPolicyError(f"policy: not valid YAML ({error})") from None
    if not isinstance(policy, Mapping):
        raise AuditPolicyError("policy: must be a YAML mapping")
    if policy.get("apiVersion") != AUDIT_API_VERSION:
        raise AuditPolicyError(f"apiVersion: must be {AUDIT_API_VERSION}")
    if policy.get("kind") != "Policy":
        raise AuditPolicyError("kind: must be Policy")
    unknown = sorted(set(policy) - _POLICY_KEYS - _POLICY_KEYS_OPTIONAL)
    if unknown:
        raise AuditPolicyError(f"policy: unknown field {unknown[0]!r}")
    if "omitStages" in policy:
        _check_stages(policy["omitStages"], "omitStages")
    rules = policy.get("rules")
    if not isinstance(rules, list) or not rules:
        raise AuditPolicyError("rules: must be a non-empty list")
    for index, rule in enumerate(rules):
        _check_rule(rule, index)
    return dict(policy)

"""A small client of clusterpanel's REST API (``/api/v1/``), standard library only.

Shared by ``api_story.py`` and ``clusterpanel_cli.py``. Authentication is an API token
(``manage.py issue_api_token <user>``), sent as ``Authorization: Token <key>``; the panel's URL
and the token come from ``--url`` / ``--token`` or ``CLUSTERPANEL_URL`` / ``CLUSTERPANEL_TOKEN``.

Every answer that is not 2xx raises :class:`ApiError` carrying the API's error body
(``{"detail": ..., "errors": {field: [...]}}``); :func:`run` prints it and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TextIO

ENV_URL = "CLUSTERPANEL_URL"
ENV_TOKEN = "CLUSTERPANEL_TOKEN"  # noqa: S105 (the variable's name)
API_PREFIX = "/api/v1/"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# SQLite (the embedded default) answers 503 with Retry-After while another write holds the
# database; nothing was written then, so asking again is safe.
BUSY_RETRIES = 3


class ApiError(Exception):
    """A non-2xx answer: the request, the status and the API's error body."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body

    def __str__(self) -> str:
        return f"{self.method} {self.path}: HTTP {self.status}\n{self.body}"


class UsageError(Exception):
    """A wrong argument or inventory, found before anything was sent."""


class PanelClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"the panel's URL must be http(s)://host[:port], not {url!r}")
        root = parsed.path.rstrip("/")
        if root.endswith(API_PREFIX.rstrip("/")):
            root = root[: -len(API_PREFIX.rstrip("/"))]
        self.base = f"{parsed.scheme}://{parsed.netloc}{root}"
        self.token = token
        self.timeout = timeout

    # --- HTTP ---------------------------------------------------------------------------------

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        """``path`` relative to ``/api/v1/`` (or already starting with it)."""
        if not path.startswith(API_PREFIX):
            path = API_PREFIX + path.lstrip("/")
        wanted = {k: v for k, v in (query or {}).items() if v is not None}
        return self.base + path + (f"?{urllib.parse.urlencode(wanted)}" if wanted else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); :class:`ApiError` unless 2xx."""
        url = self.url(path, query)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        shown = urllib.parse.urlsplit(url)
        shown_path = shown.path + (f"?{shown.query}" if shown.query else "")
        for attempt in range(BUSY_RETRIES + 1):
            # The scheme was checked to be http(s) in __init__.
            request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                    raw = answer.read()
                return json.loads(raw) if raw.strip() else None
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")
                if error.code == 503 and attempt < BUSY_RETRIES:
                    time.sleep(min(float(error.headers.get("Retry-After") or 1), 5.0))
                    continue
                raise ApiError(method, shown_path, error.code, text) from None
        raise AssertionError("unreachable")

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.request("POST", path, query=query, body=body)

    def pages(self, path: str, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``next`` (taken relative to this base, as
        the panel may name itself otherwise behind a proxy)."""
        answer = self.get(path, **query)
        while True:
            if not isinstance(answer, dict) or "results" not in answer:
                yield from answer or []
                return
            yield from answer["results"]
            following = answer.get("next")
            if not following:
                return
            parts = urllib.parse.urlsplit(following)
            answer = self.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))

    # --- lookups ------------------------------------------------------------------------------

    def cluster(self, ref: str | int) -> dict[str, Any]:
        """A cluster by id (digits) or by name."""
        text = str(ref)
        if text.isdigit():
            found: dict[str, Any] = self.get(f"clusters/{int(text)}/")
            return found
        # Filtered by exact name on the panel, so one request answers however many clusters
        # exist; the name is still compared in case an older panel ignores the filter.
        for cluster in self.pages("clusters/", name=text):
            if cluster["name"] == text:
                return cluster
        raise UsageError(f"no cluster named {text!r}")

    def nodes(self, cluster_id: int) -> list[dict[str, Any]]:
        return list(self.pages("nodes/", cluster=cluster_id))

    def node_ids(self, cluster_id: int, refs: list[str]) -> list[int]:
        """Node ids of the cluster from names or ids."""
        nodes = self.nodes(cluster_id)
        by_name = {n["name"]: n["id"] for n in nodes}
        ids = {n["id"] for n in nodes}
        found = []
        for ref in refs:
            if ref in by_name:
                found.append(by_name[ref])
            elif ref.isdigit() and int(ref) in ids:
                found.append(int(ref))
            else:
                raise UsageError(f"the cluster has no node {ref!r}")
        return found

    # --- jobs ---------------------------------------------------------------------------------

    def launch(
        self,
        cluster_id: int,
        kind: str,
        node_ids: list[int] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"cluster": cluster_id, "kind": kind, "params": params or {}}
        if node_ids is not None:
            body["nodes"] = node_ids
        job: dict[str, Any] = self.post("jobs/", body)
        return job

    def follow(
        self,
        job_id: int,
        out: TextIO | None = None,
        *,
        poll: float = 0.5,
        timeout: float = 3600.0,
    ) -> dict[str, Any]:
        """Read the job's log with ``?after=`` until the job has ended and every chunk was read
        (written to ``out`` line by line, each prefixed by its node), then its detail."""
        after = 0
        deadline = time.monotonic() + timeout
        pending: dict[tuple[str, str], str] = {}
        while True:
            page = self.get(f"jobs/{job_id}/log/", after=after)
            for chunk in page["chunks"]:
                key = (chunk["node"] or "panel", chunk["stream"])
                text = pending.pop(key, "") + chunk["text"]
                *lines, rest = text.split("\n")
                if out is not None:
                    for line in lines:
                        out.write(f"  [{key[0]}] {line}\n")
                if rest:
                    pending[key] = rest
            after = page["next"]
            if page["done"]:
                break
            if not page["chunks"]:
                if time.monotonic() > deadline:
                    raise UsageError(f"job {job_id} did not end within {timeout:.0f}s")
                time.sleep(poll)
        if out is not None:
            for (node, _stream), rest in pending.items():
                out.write(f"  [{node}] {rest}\n")
            out.flush()
        job: dict[str, Any] = self.get(f"jobs/{job_id}/")
        return job


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=os.environ.get(ENV_URL), help=f"the panel's URL (${ENV_URL})"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(ENV_TOKEN),
        help=f"an API token, from `manage.py issue_api_token <user>` (${ENV_TOKEN})",
    )


def client_from(args: argparse.Namespace) -> PanelClient:
    if not args.url:
        raise UsageError(f"give the panel's URL with --url or ${ENV_URL}")
    if not args.token:
        raise UsageError(f"give an API token with --token or ${ENV_TOKEN}")
    return PanelClient(args.url, args.token)


def run(main: Callable[[], int]) -> NoReturn:
    """Run ``main`` and exit with its code; an API error prints the API's answer and exits 1,
    a usage error exits 2, an unreachable panel exits 1."""
    try:
        code = main()
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except urllib.error.URLError as error:
        print(f"error: the panel cannot be reached: {error.reason}", file=sys.stderr)
        code = 1
    sys.exit(code)


def checks_table(checks: list[dict[str, Any]]) -> list[str]:
    """A job's checks as aligned lines, failures first (then warnings, then passes)."""
    order = {"fail": 0, "warn": 1, "pass": 2}
    rows = sorted(checks, key=lambda c: (order.get(c["status"], 3), c["node"] or "", c["name"]))
    return table(
        ["STATUS", "NODE", "CHECK", "MESSAGE"],
        [[c["status"], c["node"] or "(all)", c["name"], c["message"]] for c in rows],
    )


def table(headings: list[str], rows: list[list[Any]]) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [headings, *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headings))]
    return [
        "  ".join(
            cell if i == len(row) - 1 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in cells
    ]

"""The API server's static token file (``--token-auth-file``).

Format: CSV rows ``token,user,uid[,"group1,group2"]``. The API server reads it with Go's
``encoding/csv`` (any number of fields per row) and applies these rules: fewer than three columns
is fatal (the API server does not start); an empty token is skipped with a warning; for a token that
appears twice the later row wins, with a warning; column 4, if present, is split on commas into
groups; columns after the fourth are ignored. The parser here follows Go's CSV rules rather than
Python's, because the two disagree on stray quotes, and reports every problem with its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from clusterpanel.errors import InputError
from pki.domain import principals

Severity = Literal["error", "warning"]

# A bearer token travels in an HTTP header: printable ASCII without spaces.
_TOKEN_RE = re.compile(r"[!-~]+")
MAX_TOKEN_LENGTH = principals.MAX_TOKEN_LENGTH
# User names, uids and group names: the most the panel stores per value.
MAX_NAME_LENGTH = 255
MAX_GROUPS = 32


class StaticTokenError(InputError):
    """An entry that cannot be written to a token file; the message names the field."""


@dataclass(frozen=True)
class StaticTokenEntry:
    """One user in the token file. ``line`` is where it was read from (0 when built in code)."""

    token: str
    user: str
    uid: str
    groups: tuple[str, ...] = ()
    line: int = 0

    def __repr__(self) -> str:
        # The token is a credential: keep it out of logs and tracebacks.
        return (
            f"StaticTokenEntry(user={self.user!r}, uid={self.uid!r}, groups={self.groups!r}, "
            f"line={self.line})"
        )


@dataclass(frozen=True)
class TokenFileProblem:
    """Something the API server would refuse (error) or silently work around (warning)."""

    line: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class _CsvSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _needs_quotes(field: str) -> bool:
    """Go's csv.Writer.fieldNeedsQuotes."""
    if field == "":
        return False
    if field == "\\." or any(char in field for char in ',"\r\n'):
        return True
    return field[0].isspace()


def _quote(field: str) -> str:
    return '"' + field.replace('"', '""') + '"' if _needs_quotes(field) else field


def _check_field(value: str, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise StaticTokenError(f"{name}: must be a string")
    if not value and not allow_empty:
        raise StaticTokenError(f"{name}: must not be empty")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise StaticTokenError(f"{name}: must not contain control characters or newlines")
    return value


def validate_entry(entry: StaticTokenEntry) -> StaticTokenEntry:
    """Check a new entry: the token, user, uid and group syntax every form of the panel applies
    (``pki.domain.principals``), and that it survives the round trip through the file unchanged."""
    checks = (
        ("token", principals.token_value, entry.token),
        ("user", principals.user_name, entry.user),
        ("uid", principals.uid, entry.uid),
    )
    for field, check, value in checks:
        try:
            check(value)
        except principals.PrincipalError as error:
            raise StaticTokenError(f"{field}: {error}") from None
    if len(entry.groups) > MAX_GROUPS:
        raise StaticTokenError(f"groups: at most {MAX_GROUPS} groups, not {len(entry.groups)}")
    for group in entry.groups:
        try:
            principals.group_name(group)
        except principals.PrincipalError as error:
            raise StaticTokenError(f"groups: {error}") from None
    return _check_storable(entry)


def _check_storable(entry: StaticTokenEntry) -> StaticTokenEntry:
    """What the file itself needs: entries stored before the syntax rules still render."""
    if not isinstance(entry.token, str) or _TOKEN_RE.fullmatch(entry.token) is None:
        raise StaticTokenError("token: must be printable ASCII without spaces")
    _check_field(entry.user, "user")
    _check_field(entry.uid, "uid", allow_empty=True)
    for group in entry.groups:
        _check_field(group, "groups")
        if "," in group:
            raise StaticTokenError(f"groups: {group!r} must not contain a comma")
    return entry


def render_token_csv(entries: Iterable[StaticTokenEntry]) -> str:
    """Render entries as the API server reads them; duplicate tokens are refused."""
    lines: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        _check_storable(entry)
        if entry.token in seen:
            raise StaticTokenError(f"token: the token of user {entry.user!r} is used twice")
        seen.add(entry.token)
        fields = [entry.token, entry.user, entry.uid]
        if entry.groups:
            fields.append(",".join(entry.groups))
        lines.append(",".join(_quote(field) for field in fields) + "\n")
    return "".join(lines)


def _read_quoted(text: str, position: int, line: int) -> tuple[str, int, int]:
    """Read a quoted field starting after its opening quote; returns (value, position, line)."""
    parts: list[str] = []
    start_line = line
    while True:
        end = text.find('"', position)
        if end == -1:
            raise _CsvSyntaxError(start_line, 'extraneous or missing " in quoted-field')
        chunk = text[position:end]
        parts.append(chunk)
        line += chunk.count("\n")
        if text.startswith('""', end):
            parts.append('"')
            position = end + 2
            continue
        position = end + 1
        if position < len(text) and text[position] not in ",\n":
            raise _CsvSyntaxError(line, 'extraneous or missing " in quoted-field')
        return "".join(parts), position, line


def _read_unquoted(text: str, position: int, line: int) -> tuple[str, int]:
    end = position
    while end < len(text) and text[end] not in ",\n":
        end += 1
    value = text[position:end]
    if '"' in value:
        raise _CsvSyntaxError(line, 'bare " in non-quoted-field')
    return value, end


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, fields) like Go's csv.Reader with FieldsPerRecord = -1."""
    text = text.replace("\r\n", "\n")
    position, line = 0, 1
    while position < len(text):
        if text[position] == "\n":  # Go skips empty lines
            position, line = position + 1, line + 1
            continue
        start_line, fields = line, []
        while True:
            if text.startswith('"', position):
                value, position, line = _read_quoted(text, position + 1, line)
            else:
                value, position = _read_unquoted(text, position, line)
            fields.append(value)
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            break
        position, line = position + 1, line + 1  # past the newline (or the end)
        yield start_line, fields


def _entry_from_fields(line: int, fields: list[str]) -> StaticTokenEntry:
    groups = tuple(fields[3].split(",")) if len(fields) >= 4 else ()
    return StaticTokenEntry(fields[0], fields[1], fields[2], groups, line)


def _record_problems(line: int, fields: list[str]) -> list[TokenFileProblem]:
    problems: list[TokenFileProblem] = []
    if len(fields) > 4:
        problems.append(TokenFileProblem(line, "columns after the 4th are ignored", "warning"))
    if len(fields) >= 4 and "" in fields[3].split(","):
        problems.append(TokenFileProblem(line, "empty group name in column 4", "warning"))
    return problems


def parse_token_csv(text: str) -> tuple[list[StaticTokenEntry], list[TokenFileProblem]]:
    """Return the entries the API server would use, and the problems it would hit.

    Entries keep file order; a duplicated token keeps only its last row. A CSV syntax error stops
    the reading, as it stops the API server.
    """
    by_token: dict[str, StaticTokenEntry] = {}
    problems: list[TokenFileProblem] = []
    try:
        for line, fields in _records(text):
            if len(fields) < 3:
                problems.append(TokenFileProblem(line, "expected at least 3 columns"))
                continue
            if fields[0] == "":
                problems.append(TokenFileProblem(line, "empty token, row skipped", "warning"))
                continue
            problems.extend(_record_problems(line, fields))
            previous = by_token.pop(fields[0], None)
            if previous is not None:
                message = f"duplicate token (also on line {previous.line}); line {line} wins"
                problems.append(TokenFileProblem(line, message, "warning"))
            by_token[fields[0]] = _entry_from_fields(line, fields)
    except _CsvSyntaxError as error:
        problems.append(TokenFileProblem(error.line, str(error)))
    return sorted(by_token.values(), key=lambda entry: entry.line), problems

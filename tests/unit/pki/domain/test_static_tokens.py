"""The static token file: the API server's CSV rules, problems by line, and a round trip."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pki.domain.static_tokens import (
    StaticTokenEntry,
    StaticTokenError,
    parse_token_csv,
    render_token_csv,
)


def as_tuples(entries: list[StaticTokenEntry]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(entry.token, entry.user, entry.uid, entry.groups) for entry in entries]


def test_basic_file() -> None:
    text = 'tok1,alice,1001\ntok2,bob,1002,"system:masters,dev"\ntok3,carol,1003,ops\n'
    entries, problems = parse_token_csv(text)
    assert problems == []
    assert as_tuples(entries) == [
        ("tok1", "alice", "1001", ()),
        ("tok2", "bob", "1002", ("system:masters", "dev")),
        ("tok3", "carol", "1003", ("ops",)),
    ]
    assert [entry.line for entry in entries] == [1, 2, 3]


def test_too_few_columns_is_an_error_with_its_line() -> None:
    entries, problems = parse_token_csv("tok1,alice,1\ntok2,bob\n")
    assert as_tuples(entries) == [("tok1", "alice", "1", ())]
    assert [str(problem) for problem in problems] == ["line 2: expected at least 3 columns"]
    assert problems[0].severity == "error"


def test_empty_token_is_skipped_with_a_warning() -> None:
    entries, problems = parse_token_csv(",ghost,9\ntok,alice,1\n")
    assert as_tuples(entries) == [("tok", "alice", "1", ())]
    assert [(p.line, p.severity) for p in problems] == [(1, "warning")]
    assert "empty token" in problems[0].message


def test_duplicate_token_last_wins_and_both_lines_are_named() -> None:
    text = "dup,alice,1\nother,bob,2\ndup,carol,3,admins\n"
    entries, problems = parse_token_csv(text)
    assert as_tuples(entries) == [("other", "bob", "2", ()), ("dup", "carol", "3", ("admins",))]
    assert len(problems) == 1
    assert problems[0].severity == "warning"
    assert str(problems[0]) == "line 3: duplicate token (also on line 1); line 3 wins"


def test_go_csv_details() -> None:
    # Blank lines are skipped, CRLF is accepted, quoted fields may hold commas and quotes,
    # a record may span lines inside quotes and its line number is where it starts.
    text = '\r\ntok1,"Smith, Ann","u""1"\r\n\r\ntok2,"multi\nline",2\ntok3,c,3\n'
    entries, problems = parse_token_csv(text)
    assert problems == []
    assert as_tuples(entries) == [
        ("tok1", "Smith, Ann", 'u"1', ()),
        ("tok2", "multi\nline", "2", ()),
        ("tok3", "c", "3", ()),
    ]
    assert [entry.line for entry in entries] == [2, 4, 6]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tok,al"ice,1\n', 'line 1: bare " in non-quoted-field'),
        ('tok,alice,1\ntok2,"bob"x,2\n', 'line 2: extraneous or missing " in quoted-field'),
        ('tok,"alice,1\n', 'line 1: extraneous or missing " in quoted-field'),
    ],
)
def test_csv_syntax_errors_stop_reading(text: str, message: str) -> None:
    _, problems = parse_token_csv(text + "later,dave,4\n")
    assert [str(problem) for problem in problems] == [message]


def test_extra_columns_and_empty_groups_are_warned() -> None:
    entries, problems = parse_token_csv('tok,alice,1,"a,,b",extra\n')
    assert entries[0].groups == ("a", "", "b")
    assert sorted(problem.message for problem in problems) == [
        "columns after the 4th are ignored",
        "empty group name in column 4",
    ]
    assert all(problem.severity == "warning" for problem in problems)


def test_render_quotes_groups_with_commas() -> None:
    text = render_token_csv(
        [
            StaticTokenEntry("t1", "alice", "1", ("system:masters", "dev")),
            StaticTokenEntry("t2", "bob", "2", ("ops",)),
            StaticTokenEntry("t3", "Smith, Ann", "", ()),
        ]
    )
    assert text == 't1,alice,1,"system:masters,dev"\nt2,bob,2,ops\nt3,"Smith, Ann",\n'
    # Python's csv module reads the same columns the API server will.
    assert list(csv.reader(io.StringIO(text))) == [
        ["t1", "alice", "1", "system:masters,dev"],
        ["t2", "bob", "2", "ops"],
        ["t3", "Smith, Ann", ""],
    ]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (StaticTokenEntry("", "alice", "1"), "token"),
        (StaticTokenEntry("has space", "alice", "1"), "token"),
        (StaticTokenEntry("tok", "", "1"), "user"),
        (StaticTokenEntry("tok", "al\nice", "1"), "user"),
        (StaticTokenEntry("tok", "alice", "1\r"), "uid"),
        (StaticTokenEntry("tok", "alice", "1", ("a,b",)), "groups"),
        (StaticTokenEntry("tok", "alice", "1", ("",)), "groups"),
    ],
)
def test_render_rejects_entries_that_would_not_survive(entry: StaticTokenEntry, field: str) -> None:
    with pytest.raises(StaticTokenError, match=field):
        render_token_csv([entry])


def test_render_refuses_duplicate_tokens() -> None:
    with pytest.raises(StaticTokenError, match="token"):
        render_token_csv([StaticTokenEntry("t", "a", "1"), StaticTokenEntry("t", "b", "2")])


def test_repr_hides_the_token() -> None:
    assert "s3cr3t" not in repr(StaticTokenEntry("s3cr3t", "alice", "1"))


_printable = st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="\x7f")
_tokens = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
_groups = st.lists(
    st.text(_printable.filter(lambda char: char != ","), min_size=1, max_size=20), max_size=4
)
_entries = st.lists(
    st.builds(
        StaticTokenEntry,
        token=_tokens,
        user=st.text(_printable, min_size=1, max_size=30),
        uid=st.text(_printable, max_size=20),
        groups=_groups.map(tuple),
    ),
    max_size=8,
    unique_by=lambda entry: entry.token,
)


@settings(max_examples=120)
@given(_entries)
def test_round_trip(entries: list[StaticTokenEntry]) -> None:
    parsed, problems = parse_token_csv(render_token_csv(entries))
    assert problems == []
    assert as_tuples(parsed) == as_tuples(entries)
    assert [entry.line for entry in parsed] == list(range(1, len(entries) + 1))

"""Hostile inventory values: shell injection, option injection and look-alikes, each carrying a
canary that a test then looks for (a file that must never appear, a token that must never reach a
command line).

``payloads(canary)`` gives exactly ``COUNT`` distinct strings, every one of which contains
``canary.token`` unchanged, so "the token is in no command line" means "no payload is".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

COUNT = 200


@dataclass(frozen=True)
class Canary:
    """A name unique to one test run, and the file whose appearance would prove an injection."""

    token: str

    @classmethod
    def fresh(cls) -> Canary:
        return cls(f"cpcanary{secrets.token_hex(6)}")

    @property
    def path(self) -> str:
        return f"/tmp/{self.token}"

    def places(self, homes: tuple[str, ...] = ("/root",)) -> list[str]:
        """Where the file would land: the absolute path, and relative to a shell's likely
        working directories (a home, /, /tmp)."""
        return [self.path, f"/{self.token}", *(f"{home}/{self.token}" for home in homes)]

    def found_here(self, homes: tuple[str, ...] = ("/root",)) -> list[str]:
        return [place for place in self.places(homes) if Path(place).exists()]


def _cores(canary: Canary) -> list[str]:
    path, token = canary.path, canary.token
    touch = f"touch {path}"
    return [
        # IPv6 zones: ``ipaddress`` takes any text after the % as the zone
        f"fe80::1%;touch${{IFS}}{token}", f"fe80::1%$({token})", f"::1%`{token}`",
        # Command separators and substitutions
        f";{touch}", f"; {touch};", f"|{touch}", f"||{touch}", f"&{touch}", f"&&{touch}",
        f"$({touch})", f"`{touch}`", f"$(touch${{IFS}}{path})", f"${{IFS}}touch${{IFS}}{path}",
        f">{path}", f">>{path}", f"<{path}", f"2>{path}", f"({touch})", f"{{ {touch}; }}",
        f"$(({token}))", f"<({touch})", f"$'\\x3b'{touch}",
        # Globs, tilde, comments, history
        f"*{token}*", f"?{token}?", f"[{token}]", f"~/{token}", f"~root/{token}",
        f"#{touch}", f"!{touch}", f"!!{token}", f"{{a,b}}{token}",
        # Quotes and backslashes
        f"'{touch}'", f"';{touch};'", f'";{touch};"', f"'\"$({touch})\"'", f"\\;{touch}",
        f"\\\\;{touch}", f"\\'{touch}", f'\\"{touch}', f"\\\n{touch}",
        # Line breaks, control characters
        f"\n{touch}\n", f"\r{touch}\r", f"\r\n{touch}", f"\x00;{touch}", f"\t{touch}",
        f"%0a{touch}", f"\x1b[2J{token}", f"\x0b{touch}",
        # Options for ssh, sudo, rm and friends
        f"-oProxyCommand={touch}", f"-oProxyCommand=sh -c '{touch}'", f"-o ProxyCommand={touch}",
        f"--help {token}", f"--help;{touch}", f"-rf {path}", f"-rf /{token}", f"--{token}",
        f"-{token}", f"--user=root;{touch}", f"-S {token}", f"-- {touch}",
        # Spaces, paths
        f" {token} ", f"{token} {touch}", f"../../../{token}", f"../{path}", f"./{token}",
        f"/{token}/../..", f"a/../../{token}",
        # Unicode look-alikes: full-width ; | $ ( ) and dashes, Cyrillic letters, bidi, zero width
        f"\uff1b{touch}", f"\uff5c{touch}", f"\uff04\uff08{touch}\uff09", f"\u2010{token}",
        f"\u2013oProxyCommand={touch}", f"n\u043ede-{token}", f"\u202e{token}", f"{token}\u200b",
        f"{token}\ufeff", f"\u0430dmin;{touch}",
        # Long values
        f"{'a' * 4096};{touch}", f"{token}{'x' * 64}", f"{token}-{'-' * 300}", f"{token}." * 60,
        # Values shaped like the field they sit in
        f"a=b;{touch}", f"key=val:NoSchedule;{touch}", f"10.0.0.1;{touch}", f"fe80::1%;{touch}",
        f"fe80::1%`{touch}`", f"127.0.0.1 -oProxyCommand={touch}", f"root@127.0.0.1;{touch}",
        f"node-1.{token};{touch}",
    ]  # fmt: skip


def payloads(canary: Canary) -> list[str]:
    """``COUNT`` distinct hostile values, each containing ``canary.token``."""
    found: list[str] = []
    wrappings = (
        lambda core: core,
        lambda core: f"node-1{core}",
        lambda core: f"{core}x",
        lambda core: f"a.b/{core}",
    )
    for wrap in wrappings:
        for core in _cores(canary):
            value = wrap(core)
            if value not in found:
                found.append(value)
            if len(found) == COUNT:
                break
        if len(found) == COUNT:
            break
    assert len(found) == COUNT, len(found)
    assert all(canary.token in value for value in found)
    return found

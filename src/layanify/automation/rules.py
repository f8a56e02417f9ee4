"""Keyword rules: which rule answers a customer's text. Pure logic, no database.

Matching is case-insensitive and ignores surrounding whitespace. Regular expressions come from the
workspace and the text from customers, so a pattern runs with a time limit (the `regex` module's
`timeout`): a pattern that backtracks catastrophically on some text is treated as not matching and
logged, instead of holding the worker.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal, Protocol, TypeVar

import regex

from layanify.observability import get_logger

log = get_logger(__name__)

MatchType = Literal["exact", "contains", "regex"]
# A WhatsApp text is at most 4,096 characters; a pattern gets this long to decide.
REGEX_TIMEOUT_SECONDS = 0.05
REGEX_FLAGS = regex.IGNORECASE | regex.UNICODE | regex.V0


class KeywordRuleLike(Protocol):
    """What matching needs of a rule (the settings schema's KeywordRule)."""

    @property
    def id(self) -> str: ...

    @property
    def match(self) -> MatchType: ...

    @property
    def keywords(self) -> Sequence[str]: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def priority(self) -> int: ...


R = TypeVar("R", bound=KeywordRuleLike)


def normalize(text: str) -> str:
    """Case-folded, NFKC-normalised text with runs of whitespace collapsed (what exact/contains compare)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """The compiled pattern; raises `regex.error` with the reason when it is not valid."""
    return regex.compile(pattern, REGEX_FLAGS)


def pattern_error(pattern: str) -> str | None:
    """Why a regular expression is not valid, or None when it is."""
    try:
        compile_pattern(pattern)
    except regex.error as exc:
        return str(exc)
    return None


def keyword_matches(match: MatchType, keyword: str, text: str) -> bool:
    """True when one keyword (or pattern) matches the text."""
    if match == "regex":
        try:
            return compile_pattern(keyword).search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None
        except TimeoutError:
            log.warning("keyword_regex_timed_out", pattern_length=len(keyword), text_length=len(text))
            return False
    wanted, said = normalize(keyword), normalize(text)
    if not wanted:
        return False
    if match == "exact":
        return said == wanted
    return wanted in said


def ordered(rules: Iterable[R]) -> list[R]:
    """Enabled rules in the order they are tried: lower `priority` first, then as listed."""
    indexed = [(rule.priority, position, rule) for position, rule in enumerate(rules) if rule.enabled]
    return [rule for _, _, rule in sorted(indexed, key=lambda item: (item[0], item[1]))]


def first_match(rules: Iterable[R], text: str) -> R | None:
    """The first enabled rule (in priority order) one of whose keywords matches the text."""
    for rule in ordered(rules):
        if any(keyword_matches(rule.match, keyword, text) for keyword in rule.keywords):
            return rule
    return None

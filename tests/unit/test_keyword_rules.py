"""Which keyword rule answers a customer's text."""

from __future__ import annotations

import time

import pytest

from layanify.automation.rules import first_match, keyword_matches, normalize, pattern_error
from layanify.automation.schemas import KeywordRule


def rule(rule_id: str, match: str, *keywords: str, priority: int = 100, enabled: bool = True) -> KeywordRule:
    return KeywordRule.model_validate(
        {
            "id": rule_id,
            "match": match,
            "keywords": list(keywords),
            "reply": {"type": "text", "text": rule_id},
            "priority": priority,
            "enabled": enabled,
        }
    )


@pytest.mark.parametrize(
    ("match", "keyword", "text", "expected"),
    [
        ("exact", "menu", "MENU", True),
        ("exact", "menu", "  menu \n", True),
        ("exact", "menu", "menu dong", False),
        ("exact", "terima kasih", "Terima   Kasih", True),
        ("contains", "harga", "Berapa HARGA-nya?", True),
        ("contains", "harga", "hargai saya", True),  # contains means contains
        ("contains", "ongkir", "harga", False),
        ("contains", "straße", "STRASSE bitte", True),  # case folding, not just lower()
        ("contains", "ｍｅｎｕ", "menu", True),  # full-width characters normalised
        ("regex", r"\bresi\s*\d{6,}", "cek RESI 1234567", True),
        ("regex", r"\bresi\s*\d{6,}", "cek resi 123", False),
        ("regex", r"^(hi|halo|hai)\b", "Halo kak", True),
    ],
)
def test_matching(match: str, keyword: str, text: str, expected: bool) -> None:
    assert keyword_matches(match, keyword, text) is expected  # type: ignore[arg-type]


def test_whitespace_and_case_are_normalised() -> None:
    assert normalize("  Halo\tKAK\n ") == "halo kak"


def test_a_catastrophic_pattern_gives_up_quickly_instead_of_holding_the_worker() -> None:
    started = time.monotonic()
    assert keyword_matches("regex", r"^(a+)+$", "a" * 40 + "b") is False
    assert time.monotonic() - started < 2.0


def test_invalid_patterns_are_explained() -> None:
    assert pattern_error("harga(") is not None
    assert pattern_error(r"harga\s+\d+") is None


def test_the_first_rule_by_priority_then_position_answers() -> None:
    rules = [
        rule("general", "contains", "harga"),
        rule("specific", "contains", "harga kaos", priority=10),
        rule("off", "contains", "harga", priority=0, enabled=False),
        rule("also_general", "contains", "harga"),
    ]
    assert first_match(rules, "harga kaos berapa?") is rules[1]
    assert first_match(rules, "harga celana?") is rules[0]
    assert first_match(rules, "halo") is None


def test_any_keyword_of_a_rule_matches() -> None:
    rules = [rule("price", "contains", "harga", "price", "berapa")]
    assert first_match(rules, "What's the PRICE?") is rules[0]

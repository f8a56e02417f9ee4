"""Every text of the UI is translated into Bahasa Indonesia (a new English text fails here until it is)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from layanify.web.i18n import LOCALES_DIR, translations

WEB = Path(__file__).resolve().parents[2] / "src" / "layanify" / "web"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def test_every_text_in_the_templates_and_code_has_an_indonesian_translation() -> None:
    with (LOCALES_DIR / "id" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale="id")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS)
    }
    assert len(found) > 100, "the extraction sees the UI's texts"
    missing = sorted(found - translated)
    assert not missing, f"run `make messages` and translate in messages.po: {missing[:10]}"


def test_placeholders_survive_translation() -> None:
    catalog = translations("id")
    assert catalog.gettext("Inbox") == "Kotak masuk"
    with (LOCALES_DIR / "id" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        for message in read_po(source, locale="id"):
            if isinstance(message.id, str) and message.string and "{" in message.id:
                assert sorted(_fields(message.id)) == sorted(_fields(str(message.string))), message.id


def _fields(text: str) -> list[str]:
    return [part.split("}")[0] for part in text.split("{")[1:]]

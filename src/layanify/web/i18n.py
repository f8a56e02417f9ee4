"""Languages of the UI: English (the source strings) and Bahasa Indonesia, with Babel's catalogs.

Catalogs are the `.po` files under `web/locales/`, compiled in memory when first used, so there is no
build step and no binary file in the repository. The language is the user's choice (a cookie), else
the best match of the browser's Accept-Language, else Indonesian (most of our users' teams).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES: dict[str, str] = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT_LANGUAGE = "id"
LANGUAGE_COOKIE = "layanify_lang"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """The compiled catalog of a language (English is the source text: no catalog needed)."""
    path = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not path.exists():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The user's choice, else the browser's preference among ours, else Indonesian."""
    if cookie in LANGUAGES:
        return cookie
    if accept_language:
        wanted = [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",")]
        best = negotiate_locale([w for w in wanted if w], list(LANGUAGES), sep="_")
        if best is None:  # "en_US" and "id_ID" against our bare codes
            best = negotiate_locale([w.split("_")[0] for w in wanted if w], list(LANGUAGES))
        if best in LANGUAGES:
            return best
    return DEFAULT_LANGUAGE


def locale_of(language: str) -> Locale:
    """Babel's locale for dates and numbers."""
    return Locale.parse(language)

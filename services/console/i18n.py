"""German and English: which language a request gets, its gettext catalogue, and numbers and dates in its
format. Catalogues are the .po files under locales/, compiled in memory at start, so no binary is kept
in git and none can be stale."""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The locale's messages; English is the source language, so its catalogue is the message ids."""
    path = catalogue_path(locale)
    if locale == DEFAULT_LOCALE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate(accept_language: str, chosen: str | None) -> str:
    """The language the person chose (cookie) if it is one we have, else the best of Accept-Language."""
    if chosen in LOCALES:
        return chosen
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            weighted.append((-quality, position, primary))
    return min(weighted)[2] if weighted else DEFAULT_LOCALE


@dataclass(frozen=True)
class Formats:
    """Numbers and dates as the locale writes them (1.234,5 in German, 1,234.5 in English)."""

    locale: str

    @property
    def _babel(self) -> Locale:
        return Locale.parse(self.locale)

    def number(self, value: float, digits: int = 1) -> str:
        pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
        return numbers.format_decimal(value, format=pattern, locale=self._babel)

    def percent(self, fraction: float) -> str:
        return numbers.format_percent(fraction, locale=self._babel)

    def date(self, value: datetime | None) -> str:
        return dates.format_date(value, format="long", locale=self._babel) if value else ""

    def datetime(self, value: datetime | None) -> str:
        return dates.format_datetime(value, format="medium", locale=self._babel) if value else ""

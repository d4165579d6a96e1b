"""The catalogues: every string of the console is in the German catalogue and translated; language choice
and formats follow the locale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.console.i18n import LOCALE_DIR, LOCALES, Formats, catalogue_path, negotiate, translations


def source_messages() -> set[str]:
    """The message ids in the console's code and templates, as `make console-messages` extracts them."""
    directory = LOCALE_DIR.parent
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2.ext.babel_extract")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(directory), method_map, options):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en"])
def test_every_message_is_translated(locale: str) -> None:
    with catalogue_path(locale).open("rb") as source:
        catalogue = read_po(source, locale=locale)
    translated = {m.id for m in catalogue if m.id and m.string and not m.fuzzy}
    missing = source_messages() - translated
    assert not missing, f"run `make console-messages` and translate in {catalogue_path(locale)}: {sorted(missing)}"


def test_catalogue_compiles_in_memory() -> None:
    assert translations("de").gettext("Sign in") == "Anmelden"
    assert translations("en").gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(
    ("header", "cookie", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", None, "de"),
        ("en-US,de;q=0.5", None, "en"),
        ("fr-FR, de;q=0.3", None, "de"),
        ("fr, it", None, "en"),
        ("de;q=0, en;q=0.1", None, "en"),
        ("de;q=abc, en", None, "en"),
        ("", "de", "de"),
        ("de", "xx", "de"),
        ("en", "de", "de"),
    ],
)
def test_language_negotiation(header: str, cookie: str | None, expected: str) -> None:
    assert negotiate(header, cookie) == expected


def test_formats_follow_the_locale() -> None:
    moment = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    assert Formats("de").number(12345.678) == "12.345,7"
    assert Formats("en").number(12345.678) == "12,345.7"
    assert Formats("de").date(moment) == "5. März 2026"
    assert Formats("en").date(moment) == "March 5, 2026"
    assert Formats("de").percent(0.25) == "25\u00a0%"

"""Structured logs carry no personal data: the redaction filter, the JSON lines, the settings, and a whole
demo-sized triage and case import logged at DEBUG without one name, card number, email or postcode."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from casekit import triage_scenario

from ore.ops.logs import QUIET, configure_logging, redact


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test configures the root logger; put it back for the next test in this worker."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {n: logging.getLogger(n).level for n in QUIET}
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    for n, lv in quiet.items():
        logging.getLogger(n).setLevel(lv)
    logging.captureWarnings(False)


@pytest.mark.parametrize("text, expected", [
    ("card 4111 1111 1111 1111 declined", "card [card] declined"),
    ("4111-1111-1111-1111", "[card]"),
    ("pan=4929123456781 (13 digits)", "pan=[card] (13 digits)"),
    ("6011000990139424123 nineteen", "[card] nineteen"),
    ("mail j.smith+x@example.co.uk now", "mail [email] now"),
    ("lives at SW1A 1AA, or m11ae, or EC1A1BB", "lives at [postcode], or [postcode], or [postcode]"),
    ("B33 8TH and W1A 0AX", "[postcode] and [postcode]"),
])
def test_redact_what_looks_like_personal_data(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "person PER000123 band P1 grade C", "1,234,567 rows in 12.5 s", "2003-05-01T09:00:00",
    "package SYN-PUBLIC-1 record R0000123", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "schema 0002 head", "123456789012 twelve digits is not a card",
])
def test_redact_leaves_what_ore_logs_on_purpose(text: str) -> None:
    assert redact(text) == text


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_redact_the_message_its_arguments_extras_and_the_traceback(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "ore.jsonl"
    configure_logging("DEBUG", "json", log)
    lg = logging.getLogger("ore.test")
    lg.info("ingested %s rows for %s", 7004, "jane@example.org", extra={"postcode": "SW1A 1AA", "rows": 7004})
    try:
        raise ValueError("bad card 4111111111111111")
    except ValueError:
        lg.exception("stage failed at %s", "M1 1AE")
    first, second = lines(log)
    assert first["message"] == "ingested 7004 rows for [email]" and first["level"] == "INFO"
    assert first["logger"] == "ore.test" and first["postcode"] == "[postcode]" and first["rows"] == 7004
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert second["message"] == "stage failed at [postcode]"
    assert "ValueError: bad card [card]" in second["exception"] and "4111" not in log.read_text()


def test_text_format_and_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "ore.log"
    monkeypatch.setenv("ORE_LOG_LEVEL", "INFO")
    monkeypatch.setenv("ORE_LOG_FORMAT", "text")
    monkeypatch.setenv("ORE_LOG_FILE", str(log))
    configure_logging()
    logging.getLogger("ore.x").debug("not at INFO")
    logging.getLogger("ore.x").info("sent to a@b.com")
    assert log.read_text().rstrip().endswith("INFO ore.x: sent to [email]")
    assert "not at INFO" not in log.read_text()


def test_libraries_that_log_rows_stay_at_warning_and_a_second_call_replaces_the_handler(tmp_path: Path) -> None:
    configure_logging("DEBUG", "json", tmp_path / "a.jsonl")
    configure_logging("DEBUG", "json", tmp_path / "b.jsonl")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_ore_handler", False)]
    assert len(ours) == 1 and ours[0].baseFilename == str(tmp_path / "b.jsonl")
    for name in ("sqlalchemy.engine", "splink", "uvicorn.access"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml")


def personal_data(scenario: Path) -> dict[str, set[str]]:
    """The package's card numbers (as written and as digits), emails, names and postcodes."""
    found: dict[str, set[str]] = {"card": set(), "email": set(), "name": set(), "postcode": set()}
    with (scenario / "package" / "leads.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if card := row["card_number"].strip():
                found["card"] |= {card, re.sub(r"\D", "", card)}
            if row["email"].strip():
                found["email"].add(row["email"].strip().lower())
            if row["postcode"].strip():
                pc = row["postcode"].strip().upper()
                found["postcode"] |= {pc, pc.replace(" ", "")} - {""}
            for name in (row["cardholder_name"], f"{row['first_name']} {row['last_name']}"):
                if len(name.strip()) > 3:
                    found["name"].add(name.strip().lower())
            if len(last := row["last_name"].strip()) >= 6:  # shorter surnames are English words and codes too
                found["name"].add(last.lower())
    return found


@pytest.mark.slow
def test_a_demo_sized_triage_and_import_logged_at_debug_holds_no_personal_data(tmp_path: Path) -> None:
    from ore.cases import import_triage
    from ore.store import store_for

    log = tmp_path / "ore.jsonl"
    # as an operator's own logging set-up (or create_engine(echo=True)) might: SQLAlchemy at INFO logs every
    # bound parameter of the case import (measured: 18 of the package's names without the pin to WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    logging.getLogger("splink").setLevel(logging.DEBUG)
    configure_logging("DEBUG", "json", log)
    logging.getLogger("ore.test").debug("start")
    t = triage_scenario(tmp_path, people=20_000, subscribers=1_500, seed=3)  # ore demo's size
    store = store_for(t.ws)
    try:
        summary = import_triage(store, t.ws, t.out)
    finally:
        store.dispose()
    logging.getLogger("ore.test").info("imported %s", summary.as_dict())

    text = log.read_text(encoding="utf-8")
    entries = lines(log)  # every line is one JSON object
    assert len(entries) >= 2
    low = text.lower()
    data = personal_data(t.scenario)
    assert len(data["card"]) > 1000 and len(data["name"]) > 1000
    for kind, values in data.items():
        if kind == "name":
            leaked = {v for v in values if re.search(rf"(?<![a-z]){re.escape(v)}(?![a-z])", low)}
        elif kind == "card":
            leaked = {v for v in values if v in text}
        else:
            leaked = {v for v in values if v.lower() in low}
        assert not leaked, f"{kind} in the log: {sorted(leaked)[:5]}"


def test_standard_error_is_looked_up_at_each_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A CLI test runner swaps sys.stderr per command: the handler writes to the current one, never a closed one."""
    import io

    configure_logging("INFO", "text")
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    logging.getLogger("ore.x").info("card 4111111111111111")
    assert swapped.getvalue().rstrip().endswith("INFO ore.x: card [card]")

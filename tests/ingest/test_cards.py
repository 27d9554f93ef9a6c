"""Card numbers: keyed tokens under a private key, and no clear number anywhere ore writes or prints."""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
import stat
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from leadpkg import CARD, card, lead, open_ws, query, settings_env, write_package
from ore.cli import app
from ore.errors import OreError
from ore.ingest import ingest, load_reference
from ore.ingest.cards import CardError, card_digits, luhn_ok, mask, mask_text

from shared_paths import SAMPLE  # noqa: E402
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared sample public-1 not present")


# --- the card module ---------------------------------------------------------------------------------


def test_luhn_and_digits():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_digits(" 4111 1111-1111 1111 ") == "4111111111111111"
    for bad, words in [("", "missing"), ("4111x11111111111", "other than"), ("411111", "6 digits"),
                       ("4111111111111112", "Luhn"), ("\uff14111111111111111", "other than")]:
        with pytest.raises(CardError, match=words) as e:
            card_digits(bad)
        assert "411111" not in str(e.value)


def test_mask_keeps_first_six_and_last_four():
    assert mask("4111111111111111") == "411111******1111"
    assert mask("12345") == "*****"
    assert mask_text("card 4111 1111 1111 1111 and 4111-1111-1111-1111.") == (
        "card 411111******1111 and 411111******1111.")
    assert mask_text("4111 - 1111 - 1111 - 1111") == "411111******1111"
    assert mask_text("phone 01797 223344, amount 29.95") == "phone 01797 223344, amount 29.95"


# --- the key -------------------------------------------------------------------------------------------


def test_key_file_is_private_and_reused_and_tokens_are_stable(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "a", [lead(1, card_number=CARD)], package_id="A"))
    (key_file,) = (ws.root / "keys").iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((ws.root / "keys").stat().st_mode) & 0o077 == 0
    key = key_file.read_bytes()
    assert len(key) == 32

    ws2 = open_ws(tmp_path / "ws")  # another run on the same workspace
    spaced = " ".join(CARD[i:i + 4] for i in range(0, 16, 4))
    ingest(ws2, write_package(tmp_path / "b", [lead(1, card_number=spaced), lead(2)], package_id="B"))
    assert list((ws.root / "keys").iterdir()) == [key_file]
    assert key_file.read_bytes() == key
    tokens = query(ws2, "SELECT package_id, card_token, card_key_version FROM leads WHERE card_last4 = ? "
                        "ORDER BY package_id", [CARD[-4:]])
    expected = hmac.new(key, CARD.encode(), hashlib.sha256).hexdigest()
    assert tokens == [("A", expected, 1), ("B", expected, 1)]


def test_another_workspace_has_another_key(tmp_path):
    tokens = []
    for name in ("ws1", "ws2"):
        ws = open_ws(tmp_path / name)
        ingest(ws, write_package(tmp_path / f"pkg-{name}", [lead(1, card_number=CARD)]))
        tokens.append(query(ws, "SELECT card_token FROM leads")[0][0])
    assert tokens[0] != tokens[1]


def test_a_damaged_key_is_refused_not_used(tmp_path):
    ws = open_ws(tmp_path / "ws")
    (ws.root / "keys" / "card-v1.key").write_bytes(b"")  # e.g. a run killed while writing it
    with pytest.raises(OreError, match="card-v1.key"):
        ws.card_key()
    with pytest.raises(OreError, match="card-v1.key"):
        ingest(ws, write_package(tmp_path / "pkg", [lead(1)]))


def test_reference_card_alerts_use_the_same_token(tmp_path):
    ws = open_ws(tmp_path / "ws")
    ingest(ws, write_package(tmp_path / "pkg", [lead(1, card_number=CARD)]))
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "card_alerts.csv").write_text(f"card_number,reported_on,alert_type\n{CARD},2000-01-01,stolen\n")
    load_reference(ws, ref)
    joined = query(ws, "SELECT count(*) FROM leads JOIN ref_card_alerts USING (card_token)")
    assert joined == [(1,)]


# --- no clear card number anywhere -------------------------------------------------------------------


class ClearCards:
    """Finds any of a set of card numbers in text or bytes, typed with or without spaces and dashes."""

    def __init__(self, numbers: set[str]) -> None:
        self.numbers = {n for n in numbers if len(n) >= 12}
        self.lengths = sorted({len(n) for n in self.numbers})
        self._runs = re.compile(rb"[0-9](?:[0-9]|[ \-]+(?=[0-9]))*")

    def find(self, data: bytes | str) -> set[str]:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        found: set[str] = set()
        for m in self._runs.finditer(data):
            digits = re.sub(rb"[ \-]", b"", m.group(0)).decode()
            if len(digits) < self.lengths[0]:
                continue
            for n in self.lengths:
                for i in range(len(digits) - n + 1):
                    if digits[i:i + n] in self.numbers:
                        found.add(digits[i:i + n])
        return found


def sample_cards() -> tuple[set[str], set[str]]:
    """(digits, as typed) of every card number in the sample's leads and card alerts."""
    digits: set[str] = set()
    typed: set[str] = set()
    for path in (SAMPLE / "package" / "leads.csv", SAMPLE / "reference" / "card_alerts.csv"):
        with path.open(newline="", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                raw = (row.get("card_number") or "").strip()
                d = re.sub(r"\D", "", raw)
                if len(d) >= 12:
                    digits.add(d)
                    typed.add(raw)
    return digits, typed


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    env = settings_env(root / "ws")
    runner = CliRunner()
    outputs = []
    for args in (["ingest", str(SAMPLE / "package")], ["reference", "load", str(SAMPLE / "reference")],
                 ["ingest", str(SAMPLE / "package")], ["quarantine"],
                 ["quarantine", "--out", str(root / "quarantine.csv")]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    return open_ws(root / "ws"), outputs, root / "quarantine.csv"


@needs_sample
def test_sample_has_card_numbers_typed_with_separators():
    digits, typed = sample_cards()
    assert len(digits) > 1000
    assert any(" " in t or "-" in t for t in typed), "the scan must see numbers as typed, too"
    finder = ClearCards(digits)
    some = next(t for t in typed if " " in t or "-" in t)
    assert finder.find(f"x{some}y") == {re.sub(r'\D', '', some)}


@needs_sample
def test_no_clear_card_number_in_any_workspace_file(sample_ws):
    ws, _, _ = sample_ws
    finder = ClearCards(sample_cards()[0])
    files = [p for p in ws.root.rglob("*") if p.is_file()]
    assert ws.duckdb_path in files
    for path in files:
        assert not finder.find(path.read_bytes()), f"clear card number in {path}"


@needs_sample
def test_no_clear_card_number_in_any_duckdb_text_column(sample_ws):
    ws, _, _ = sample_ws
    finder = ClearCards(sample_cards()[0])
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
        ).fetchall()
        assert ("quarantine", "row_masked") in columns and ("leads", "card_masked") in columns
        for table, column in columns:
            values = con.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL').fetchall()
            text = "\n".join(v for (v,) in values)
            assert not finder.find(text), f"clear card number in {table}.{column}"
    finally:
        con.close()
    masked = query(ws, "SELECT count(*) FROM quarantine WHERE row_masked LIKE '%******%'")[0][0]
    assert masked > 0, "quarantined rows keep the masked card"


@needs_sample
def test_no_clear_card_number_in_cli_output(sample_ws):
    _, outputs, quarantine_csv = sample_ws
    finder = ClearCards(sample_cards()[0])
    assert "already ingested" in outputs[2]
    assert "fails Luhn" in outputs[3]
    for out in outputs:
        assert not finder.find(out)
    assert not finder.find(quarantine_csv.read_bytes())


def test_card_number_repeated_in_another_field_is_masked(tmp_path):
    """A sender that also put the number in a free-text column must not get it stored in clear."""
    ws = open_ws(tmp_path / "ws")
    c = card(5)
    ingest(ws, write_package(tmp_path / "pkg", [lead(1, card_number=c, transaction_id=f"TX-{c}",
                                                      phone=c[:8] + " " + c[8:])]))
    con = duckdb.connect(str(ws.duckdb_path), read_only=True)
    try:
        text = "\n".join(str(v) for row in con.execute("SELECT * FROM leads").fetchall() for v in row)
    finally:
        con.close()
    assert c not in text.replace(" ", "")

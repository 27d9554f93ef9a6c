"""Zipped packages: one ingests like its directory; hostile or broken archives are refused, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from leadpkg import lead, open_ws, query, table_count, write_package
from ore.errors import PackageRejected
from ore.ingest import ingest

VISITS = [{"username": "user1", "visit_time": "2001-06-01T12:05:00", "ip_address": "", "product": ""}]


def zip_dir(src: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, prefix + p.name)
    return dest


def assert_nothing_written(ws):
    for table in ("packages", "leads", "visits", "quarantine"):
        assert table_count(ws, table) == 0, table
    assert not list(ws.tmp.iterdir()), "the unpacked files are removed"


def assert_refused(tmp_path, archive, match, **settings):
    """Ingesting ``archive`` is a clear rejection matching ``match``, and nothing is written."""
    ws = open_ws(tmp_path / "ws", **settings)
    with pytest.raises(PackageRejected, match=match):
        ingest(ws, archive)
    assert_nothing_written(ws)
    return ws


def package(tmp_path):
    return write_package(tmp_path / "pkg", [lead(1), lead(2, amount="x"), lead(3)], visits=VISITS)


def snapshot(ws):
    return (query(ws, "SELECT * EXCLUDE (package_id) FROM leads ORDER BY line"),
            query(ws, "SELECT * EXCLUDE (package_id) FROM visits ORDER BY line"),
            query(ws, "SELECT file, line, record_id, reason FROM quarantine ORDER BY line"))


@pytest.mark.parametrize("prefix", ["", "SYN-1/"])
def test_zip_ingests_like_the_directory(tmp_path, prefix):
    pkg = package(tmp_path)
    ws_dir = open_ws(tmp_path / "ws-dir")
    ws_zip = open_ws(tmp_path / "ws-zip")
    r_dir = ingest(ws_dir, pkg)
    r_zip = ingest(ws_zip, zip_dir(pkg, tmp_path / "pkg.zip", prefix))
    assert r_zip.status == "ingested"
    assert r_zip.files == r_dir.files
    assert snapshot(ws_zip)[1:] == snapshot(ws_dir)[1:]
    # tokens differ (each workspace has its own key); everything else is the same
    no_token = "SELECT * EXCLUDE (package_id, card_token) FROM leads ORDER BY line"
    assert query(ws_zip, no_token) == query(ws_dir, no_token)
    assert not list(ws_zip.tmp.iterdir()), "the unpacked files are removed"


def test_zip_of_a_known_package_is_a_noop(tmp_path):
    pkg = package(tmp_path)
    ws = open_ws(tmp_path / "ws")
    ingest(ws, pkg)
    assert ingest(ws, zip_dir(pkg, tmp_path / "pkg.zip")).status == "already ingested"
    assert table_count(ws, "leads") == 2


def test_zip_slip_is_refused(tmp_path):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "evil.zip")
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("../../escaped.txt", "owned")
    ws = open_ws(tmp_path / "ws")
    with pytest.raises(PackageRejected, match="would be written outside the package"):
        ingest(ws, z)
    assert not (tmp_path / "escaped.txt").exists() and not (ws.root / "escaped.txt").exists()
    assert_nothing_written(ws)


@pytest.mark.parametrize("name", ["/etc/evil.txt", "C:/evil.txt", "a/../../evil.txt", "..\\evil.txt"])
def test_absolute_and_drive_paths_are_refused(tmp_path, name):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(name, "x")
    assert_refused(tmp_path, z, "outside the package")


def test_zip_bomb_is_refused(tmp_path):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "bomb.zip")
    with zipfile.ZipFile(z, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("padding.csv", b"0" * 50_000_000)
    assert z.stat().st_size < 1_000_000
    assert_refused(tmp_path, z, "zip bomb")


def test_archive_larger_than_the_limit_is_refused(tmp_path):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "big.zip")
    assert_refused(tmp_path, z, "unpacks to .* bytes \\(limit 1,000\\)", max_package_bytes=1000)


def test_too_many_entries_is_refused(tmp_path):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "many.zip")
    with zipfile.ZipFile(z, "a") as zf:
        for i in range(60):
            zf.writestr(f"junk/{i}.txt", "x")
    assert_refused(tmp_path, z, "63 entries \\(limit 50\\)", max_archive_entries=50)


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95])
def test_truncated_zip_is_refused(tmp_path, keep):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "pkg.zip")
    data = z.read_bytes()
    z.write_bytes(data[: int(len(data) * keep)])
    assert_refused(tmp_path, z, "pkg.zip: not a readable zip archive")


def test_damaged_member_is_refused(tmp_path):
    pkg = package(tmp_path)
    z = tmp_path / "pkg.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(pkg.iterdir()):
            zf.write(p, p.name)
    data = bytearray(z.read_bytes())
    at = data.index(b"R000002")  # inside the stored leads.csv: the CRC no longer matches
    data[at:at + 7] = b"R999999"
    z.write_bytes(bytes(data))
    assert_refused(tmp_path, z, "is damaged")


def test_not_a_zip_at_all(tmp_path):
    z = tmp_path / "pkg.zip"
    z.write_bytes(b"this is not a zip archive")
    assert_refused(tmp_path, z, "not a readable zip archive")


def test_a_file_and_a_directory_of_one_name_is_refused_clearly(tmp_path):
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "pkg.zip")
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("x", "a file")
        zf.writestr("x/y", "a file where x must be a directory")
    assert_refused(tmp_path, z, "pkg.zip")


def test_zip_without_a_manifest(tmp_path):
    z = tmp_path / "pkg.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("leads.csv", "record_id\n")
    assert_refused(tmp_path, z, "pkg.zip: no manifest.json")


def test_stale_unpacked_files_from_a_crashed_run_are_removed(tmp_path):
    """A run killed mid-way leaves clear card numbers in tmp/; the next ingest clears them."""
    ws = open_ws(tmp_path / "ws")
    stale = ws.tmp / "unpack-crashed"
    stale.mkdir()
    (stale / "leads.csv").write_text(f"card_number\n{lead(1)['card_number']}\n")
    ingest(ws, package(tmp_path))
    assert not stale.exists()


def test_many_small_bombs_are_one_bomb(tmp_path):
    """Members each under the per-entry threshold, expanding 1000x together."""
    pkg = package(tmp_path)
    z = zip_dir(pkg, tmp_path / "bombs.zip")
    with zipfile.ZipFile(z, "a", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"pad/{i}.csv", b"0" * 900_000)
    assert_refused(tmp_path, z, "in all .*zip bomb")

"""Safe unpacking of zipped packages: no path escapes, no bombs, no surprises.

Sizes and counts declared in a zip's directory are checked first and the bytes
actually written are counted again, since a hostile archive can lie about both.
An entry that is a symbolic link, or whose name appears twice, is refused: neither
has a place in a package, and either could make the files checked differ from the
files loaded. The limits are settings (docs/formats/index.md, "Limits on what is read").
"""

from __future__ import annotations

import errno
import shutil
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ore.errors import PackageRejected

MAX_RATIO = 200  # default of the max_compression_ratio setting: above it is a zip bomb, not CSV
BOMB_MIN_BYTES = 1_000_000  # below this, a high ratio is a small file of repeats, harmless
_SYMLINK = 0o120000  # S_IFLNK in the Unix mode a zip keeps in the top half of external_attr


def check_archive(path: Path, max_bytes: int, max_entries: int, *, max_ratio: float = MAX_RATIO
                  ) -> list[zipfile.ZipInfo]:
    """The members of a zip after checking count, declared sizes, ratios and names."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackageRejected(f"{path.name}: not a readable zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
    if len(infos) > max_entries:
        raise PackageRejected(f"{path.name}: {len(infos):,} entries (limit {max_entries:,})")
    total = 0
    seen: set[tuple[str, ...]] = set()
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
            raise PackageRejected(f"{path.name}: entry {info.filename!r} would be written outside the package")
        if (info.external_attr >> 16) & 0o170000 == _SYMLINK:
            raise PackageRejected(f"{path.name}: entry {info.filename!r} is a symbolic link, "
                                  "which a package has no use for")
        if name.parts in seen and not info.is_dir():
            raise PackageRejected(f"{path.name}: entry {info.filename!r} appears twice in the archive")
        seen.add(name.parts)
        total += info.file_size
        ratio = info.file_size / info.compress_size if info.compress_size else 0
        if ratio > max_ratio and info.file_size > BOMB_MIN_BYTES:
            raise PackageRejected(
                f"{path.name}: entry {info.filename!r} expands {info.file_size // info.compress_size}x "
                f"(limit {max_ratio:g}x, ORE_MAX_COMPRESSION_RATIO): refused as a possible zip bomb"
            )
    if total > max_bytes:
        raise PackageRejected(f"{path.name}: unpacks to {total:,} bytes (limit {max_bytes:,})")
    # Many members each under the per-entry threshold add up to a bomb just the same.
    packed = sum(info.compress_size for info in infos)
    if total > BOMB_MIN_BYTES and packed and total / packed > max_ratio:
        raise PackageRejected(
            f"{path.name}: its entries expand {total // packed}x in all (limit {max_ratio:g}x, "
            "ORE_MAX_COMPRESSION_RATIO): refused as a possible zip bomb"
        )
    return infos


def unpack(path: Path, dest: Path, max_bytes: int, max_entries: int, *, max_ratio: float = MAX_RATIO) -> Path:
    """Unpack a zip into ``dest`` and return the package directory (the one holding manifest.json)."""
    infos = check_archive(path, max_bytes, max_entries, max_ratio=max_ratio)
    written = 0
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            if info.is_dir():
                continue
            target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise PackageRejected(f"{path.name}: unpacks to more than {max_bytes:,} bytes")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:
                raise PackageRejected(f"{path.name}: entry {info.filename!r} is damaged ({e})") from None
            except (NotImplementedError, RuntimeError) as e:  # an unsupported compression, an encrypted entry
                raise PackageRejected(f"{path.name}: entry {info.filename!r} cannot be read ({e})") from None
            except OSError as e:  # e.g. 'x' both a file and a directory in the archive
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise  # our disk is full, not the package bad: ingest says so
                raise PackageRejected(
                    f"{path.name}: entry {info.filename!r} cannot be unpacked ({e.strerror})"
                ) from None
    return package_root(dest, path.name)


def package_root(directory: Path, label: str) -> Path:
    """The directory holding manifest.json: the top, or its only subdirectory."""
    if (directory / "manifest.json").is_file():
        return directory
    subdirs = [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("__MACOSX")]
    if len(subdirs) == 1 and (subdirs[0] / "manifest.json").is_file():
        return subdirs[0]
    raise PackageRejected(f"{label}: no manifest.json at the top of the package")


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)

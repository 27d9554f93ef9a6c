"""Structured logs (JSON lines, or text for a terminal) that carry no personal data.

What goes in a log line is decided by ore's code: counts, timings, stage names, package and
person references, never a name, address, card number or email. Two walls keep it so where
other code is not ore's:

- libraries that would log rows or SQL parameters (SQLAlchemy's engine at INFO/DEBUG logs
  every bound value: names, postcodes; Splink logs its SQL; uvicorn's access log carries
  query strings) are held at WARNING whatever level ore logs at;
- every line, message and traceback alike, passes a redaction filter before it is written:
  anything that looks like a card number (13 to 19 digits, spaces or dashes allowed between
  them), an email address or a UK postcode is replaced by ``[card]``, ``[email]``,
  ``[postcode]``.

A name cannot be recognised by its shape, so the first wall is what keeps names out; a test
runs a whole demo-sized triage and case import at DEBUG and finds none of the package's names,
card numbers, emails or postcodes in the file.

Settings: ``ORE_LOG_LEVEL`` (default WARNING), ``ORE_LOG_FORMAT`` (``json`` or ``text``,
default ``text``), ``ORE_LOG_FILE`` (default: standard error). Arguments win over them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

CARD = re.compile(r"(?<![\dA-Za-z])\d(?:[ -]?\d){12,18}(?![\dA-Za-z])")
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# outward code (A9, A99, A9A, AA9, AA99, AA9A) then the inward code (9AA); space optional
POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE)

# Loggers that would write personal data at INFO or DEBUG: held at WARNING at least.
QUIET = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "alembic", "splink", "py4j", "pyspark",
         "uvicorn.access", "httpx", "httpcore", "multipart", "python_multipart", "filelock", "asyncio",
         "matplotlib", "urllib3")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("json", "text")
_HANDLER_FLAG = "_ore_handler"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error as it is at each line, not as it was when logging was set up (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def redact(text: str) -> str:
    """``text`` with card numbers, emails and UK postcodes replaced by a label."""
    text = EMAIL.sub("[email]", text)  # first: an email's local part may hold digits or a postcode
    text = CARD.sub("[card]", text)
    return POSTCODE.sub("[postcode]", text)


class RedactFilter(logging.Filter):
    """Redacts a record's message and traceback in place, before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call still logs, without its arguments
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# LogRecord attributes that are not extra fields given by the caller
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for k, v in record.__dict__.items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v if isinstance(v, int | float | bool) or v is None else redact(str(v))
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # extra fields and anything a subclass adds: redacted again


def configure_logging(level: str | int | None = None, fmt: str | None = None, file: Path | str | None = None,
                      *, stream: TextIO | None = None) -> logging.Handler:
    """Send ore's logs (and every library's, through the root logger) to one redacting handler.

    ``level``, ``fmt`` and ``file`` default to ``ORE_LOG_LEVEL``, ``ORE_LOG_FORMAT`` and
    ``ORE_LOG_FILE``. Calling it again replaces the handler it installed before (tests, a
    server reloading), leaving handlers others installed alone. Returns the handler.
    """
    level = level if level is not None else os.environ.get("ORE_LOG_LEVEL", "WARNING")
    fmt = (fmt or os.environ.get("ORE_LOG_FORMAT") or "text").lower()
    file = file if file is not None else (os.environ.get("ORE_LOG_FILE") or None)
    if isinstance(level, str):
        if level.upper() not in LEVELS:
            raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
        level = getattr(logging, level.upper())
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use json or text")
    handler: logging.Handler
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    elif stream is not None:
        handler = logging.StreamHandler(stream)
    else:
        handler = _Stderr()
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    setattr(handler, _HANDLER_FLAG, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(int(level), logging.WARNING))
    logging.captureWarnings(True)
    return handler

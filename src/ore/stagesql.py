"""Where the SQL of corroborate, assess and allocate runs: the workspace's DuckDB, or Spark SQL.

A stage writes its rules once, in DuckDB's SQL, and hands every statement to a ``StageSQL``:
``table`` (make a working table from a query), ``append`` (add a query's rows to one), ``rows``
(bring a few rows to Python). ``DuckDBSQL`` runs them on the workspace connection, as ore always
has. ``SparkSQL`` transpiles them with sqlglot (the SQL is written in the forms that transpile
right: no lambdas, no ordered ``first``, no list slices) and runs them on Spark: the stage's
inputs go to Spark as Parquet files of the package's rows, working tables live as Parquet files,
and the tables the stage writes come back to the workspace as Parquet. Outputs are written to the
workspace by the stage itself either way, so everything after a stage reads one DuckDB workspace.

Spark has no ``strip_accents``, and its Jaro-Winkler (Splink's jar) scores differently from
DuckDB's; both are registered here as UDFs that give DuckDB's values (rapidfuzz, unicodedata), so
that an indicator fires on the same records on either engine.
"""

from __future__ import annotations

import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark


class StageSQL(Protocol):
    """What a stage needs of an engine: working tables, appends, a few rows, its inputs."""

    engine: str
    statements: int  # statements run so far on this engine

    def inputs(self, package_id: str, *names: str) -> None:
        """Make workspace tables readable by the engine (only ``package_id``'s rows where they have one)."""

    def exists(self, name: str) -> bool:
        """Whether the workspace has table ``name``."""

    def table(self, name: str, query: str) -> None:
        """Create or replace working table ``name`` with the rows of ``query``."""

    def append(self, name: str, query: str) -> None:
        """Add the rows of ``query`` to working table ``name`` (columns by position)."""

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """The rows of ``query``, in its order, as Python values."""

    def keep(self, *names: str) -> None:
        """Make working tables readable on the workspace connection (for the stage's writes)."""

    def drop(self, *names: str) -> None:
        """Remove working tables."""


def lit(value: str) -> str:
    """A SQL string literal (quotes doubled; sqlglot re-quotes it for Spark)."""
    return "'" + value.replace("'", "''") + "'"


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()
    return rows[0][0] > 0


def replace_package_rows(con: duckdb.DuckDBPyConnection, table: str, package_id: str, rows: Any) -> None:
    """Swap ``package_id``'s rows of ``table`` for ``rows`` (an Arrow table of its columns, in order) in one
    transaction: a run killed in between leaves the old rows, never a package with none."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE package_id = ?", [package_id])
        con.register("_ore_rows", rows)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM _ore_rows")
        finally:
            con.unregister("_ore_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@dataclass
class DuckDBSQL:
    """The stage's SQL on the workspace connection; working tables are connection-local TEMP tables."""

    con: duckdb.DuckDBPyConnection
    engine: str = "duckdb"
    statements: int = 0

    def inputs(self, package_id: str, *names: str) -> None:
        return None  # the workspace's tables are read where they are

    def exists(self, name: str) -> bool:
        return has_table(self.con, name)

    def table(self, name: str, query: str) -> None:
        self.statements += 1
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")

    def append(self, name: str, query: str) -> None:
        self.statements += 1
        self.con.execute(f"INSERT INTO {name} {query}")

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        self.statements += 1
        return self.con.execute(query).fetchall()

    def keep(self, *names: str) -> None:
        return None  # they are already there

    def drop(self, *names: str) -> None:
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


class _SparkDialect(Spark):
    """Spark, with DuckDB's ``epoch`` kept to the microsecond (sqlglot writes whole seconds)."""

    class Generator(Spark.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {
            **Spark.Generator.TRANSFORMS,
            exp.TimeToUnix: lambda self, e: f"(unix_micros(CAST({self.sql(e, 'this')} AS TIMESTAMP)) / 1000000.0)",
        }


def to_spark(query: str) -> str:
    """DuckDB SQL as Spark SQL."""
    return sqlglot.transpile(query, read="duckdb", write=_SparkDialect)[0]


def _strip_accents(s: str | None) -> str | None:
    """As DuckDB's strip_accents: decompose and drop the combining marks."""
    if s is None:
        return None
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def _jaro_winkler(a: str | None, b: str | None) -> float | None:
    """As DuckDB's jaro_winkler_similarity (rapidfuzz's, which DuckDB's is; two empty strings: 0)."""
    from rapidfuzz.distance import JaroWinkler

    if a is None or b is None:
        return None
    if not a and not b:
        return 0.0
    return float(JaroWinkler.similarity(a, b))


def _damerau_levenshtein(a: str | None, b: str | None) -> int | None:
    """As DuckDB's damerau_levenshtein."""
    from rapidfuzz.distance import DamerauLevenshtein

    if a is None or b is None:
        return None
    return int(DamerauLevenshtein.distance(a, b))


# DuckDB's functions the stages use that Spark lacks or computes differently: DuckDB's name ->
# (the name sqlglot gives it in Spark SQL, a Python twin giving DuckDB's values, its Spark type)
TWINS: dict[str, tuple[str, Callable[..., Any], str]] = {
    "strip_accents": ("strip_accents", _strip_accents, "string"),
    "jaro_winkler_similarity": ("jarowinkler_similarity", _jaro_winkler, "double"),
    "damerau_levenshtein": ("damerau_levenshtein", _damerau_levenshtein, "int"),
}


def register_functions(spark: Any) -> None:
    """Register the twins of DuckDB's functions on a Spark session."""
    for spark_name, fn, kind in TWINS.values():
        spark.udf.register(spark_name, fn, kind)


@dataclass
class SparkSQL:
    """The stage's SQL on Spark; tables cross to and from the workspace as Parquet under ``workdir``."""

    spark: Any
    con: duckdb.DuckDBPyConnection
    workdir: Path
    engine: str = "spark"
    statements: int = 0
    _paths: dict[str, list[Path]] = field(default_factory=dict, repr=False)
    _n: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="ore-sql-", dir=self.workdir))  # this runner's alone
        register_functions(self.spark)
        # DuckDB's timestamps have no zone; Spark must not shift them by the machine's
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")

    def _path(self, name: str) -> Path:
        self._n += 1
        return self.workdir / f"{self._n:04d}_{name}.parquet"

    def _register(self, name: str, paths: list[Path]) -> None:
        old = self._paths.get(name, [])
        self._paths[name] = paths
        self.spark.read.parquet(*[str(p) for p in paths]).createOrReplaceTempView(name)
        for p in old:
            if p not in paths:
                shutil.rmtree(p, ignore_errors=True)

    def inputs(self, package_id: str, *names: str) -> None:
        for name in names:
            if not has_table(self.con, name):
                continue  # the stage asks exists() and does without it
            cols = {c for (c,) in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]).fetchall()}
            where = f" WHERE package_id = {lit(package_id)}" if "package_id" in cols else ""
            path = self._path(name)
            path.mkdir(parents=True)
            target = str(path / "part-0.parquet").replace("'", "''")
            self.con.execute(f"COPY (SELECT * FROM {name}{where}) TO '{target}' (FORMAT parquet)")
            self._register(name, [path])

    def exists(self, name: str) -> bool:
        return has_table(self.con, name)

    def table(self, name: str, query: str) -> None:
        self.statements += 1
        path = self._path(name)
        self.spark.sql(to_spark(query)).write.parquet(str(path))
        self._register(name, [path])

    def append(self, name: str, query: str) -> None:
        self.statements += 1
        target = self.spark.table(name).schema
        # as INSERT: by position, cast to the table's types
        df = self.spark.sql(to_spark(query)).toDF(*target.names)
        df = df.select([df[f.name].cast(f.dataType) for f in target.fields])
        path = self._path(name)
        df.write.parquet(str(path))
        self._register(name, [*self._paths[name], path])

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        self.statements += 1
        table = self.spark.sql(to_spark(query)).toArrow()
        # column by column: two unnamed aggregates may share a name, which a row dict would merge
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def keep(self, *names: str) -> None:
        for name in names:
            files = [str(f) for p in self._paths[name] for f in sorted(p.glob("*.parquet"))]
            if files:
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_parquet($files)",
                                 {"files": files})
            else:  # an empty Spark table wrote no data file: its columns, no rows
                self.con.register("_ore_empty", self.spark.table(name).limit(0).toArrow())
                try:
                    self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _ore_empty")
                finally:
                    self.con.unregister("_ore_empty")

    def drop(self, *names: str) -> None:
        for name in names:
            self.spark.catalog.dropTempView(name)
            for p in self._paths.pop(name, []):
                shutil.rmtree(p, ignore_errors=True)
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        for name in list(self._paths):
            self.spark.catalog.dropTempView(name)
        self._paths.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

"""Where triage does its bulk work: DuckDB on this machine, or Apache Spark.

Resolve prepares its tables (standard columns, best values, households) in a private DuckDB
connection either way: that work is linear in the records. What grows with the square of a
package, scoring the blocked pairs (u sampling, EM, prediction), runs on the engine: DuckDB,
or Splink's Spark backend when a package outgrows one machine. Tables cross to Spark as
Parquet and the scored pairs above a threshold come back the same way, so the code around the
model reads one DuckDB table whichever engine scored it. The later stages (corroborate, assess,
allocate) run their SQL on the engine's ``stage_sql`` (``ore.stagesql``): Spark SQL on the same
session, with their tables crossing as Parquet too.

Spark is an optional extra (``pip install 'ore[spark]'``, Java 17); nothing here imports it
until a Spark engine is asked for.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
from splink import DuckDBAPI

from ore.errors import OreError
from ore.stagesql import DuckDBSQL, SparkSQL, StageSQL

ENGINES = ("duckdb", "spark")


class Engine(Protocol):
    """What the model builder needs of an engine."""

    name: str

    def db_api(self, scon: duckdb.DuckDBPyConnection) -> Any:
        """A Splink database API for this engine."""

    def register(self, db_api: Any, scon: duckdb.DuckDBPyConnection, table: str, name: str) -> Any:
        """Hand DuckDB table ``table`` to the engine as Splink input ``name``."""

    def materialise(self, db_api: Any, scon: duckdb.DuckDBPyConnection, sql: str, name: str) -> None:
        """Run ``sql`` (over the engine's Splink tables) and keep its rows as DuckDB table ``name``."""

    def stage_sql(self, con: duckdb.DuckDBPyConnection) -> StageSQL:
        """Where the later stages run their SQL, writing their outputs to workspace ``con``."""

    def close(self) -> None:
        """Remove what the engine wrote for this run."""


@dataclass
class DuckDBEngine:
    """Splink on the same in-memory DuckDB connection that holds resolve's tables."""

    name: str = "duckdb"

    def db_api(self, scon: duckdb.DuckDBPyConnection) -> Any:
        return DuckDBAPI(connection=scon)

    def register(self, db_api: Any, scon: duckdb.DuckDBPyConnection, table: str, name: str) -> Any:
        return db_api.register(table, table_name=name)

    def materialise(self, db_api: Any, scon: duckdb.DuckDBPyConnection, sql: str, name: str) -> None:
        scon.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def stage_sql(self, con: duckdb.DuckDBPyConnection) -> StageSQL:
        return DuckDBSQL(con)

    def close(self) -> None:
        return None


@dataclass
class SparkEngine:
    """Splink's Spark backend; Parquet files in ``workdir`` carry tables both ways."""

    spark: Any
    workdir: Path
    name: str = "spark"
    _n: int = field(default=0, repr=False)
    _stages: list[SparkSQL] = field(default_factory=list, repr=False)

    def db_api(self, scon: duckdb.DuckDBPyConnection) -> Any:
        from splink.backends.spark import SparkAPI

        # parquet checkpoints break Spark's lineage between Splink's steps (its advice for local mode)
        return SparkAPI(spark_session=self.spark, break_lineage_method="parquet")

    def _path(self, name: str) -> str:
        self._n += 1
        return str(self.workdir / f"{self._n:03d}_{name}.parquet")

    def register(self, db_api: Any, scon: duckdb.DuckDBPyConnection, table: str, name: str) -> Any:
        path = self._path(name)
        scon.execute(f"COPY (SELECT * FROM {table} ORDER BY unique_id) TO '{path}' (FORMAT parquet)")
        return db_api.register(self.spark.read.parquet(path), table_name=name)

    def materialise(self, db_api: Any, scon: duckdb.DuckDBPyConnection, sql: str, name: str) -> None:
        path = self._path(name)
        self.spark.sql(sql).write.mode("overwrite").parquet(path)
        # ordered, so that what follows reads the pairs in one order whatever Spark's partitions were
        scon.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{path}/*.parquet') "
                     "ORDER BY ALL")

    def stage_sql(self, con: duckdb.DuckDBPyConnection) -> StageSQL:
        runner = SparkSQL(self.spark, con, self.workdir / f"stages-{len(self._stages)}")
        self._stages.append(runner)
        return runner

    def close(self) -> None:
        # the Spark session stays (starting one costs seconds); this run's views and Parquet files go
        for runner in self._stages:
            runner.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def spark_session(master: str | None = None, memory: str | None = None,
                  conf: dict[str, str] | None = None) -> Any:
    """A local (or ``ORE_SPARK_MASTER``) Spark session with Splink's similarity functions loaded; ``conf`` adds
    settings (taken only by a session started here, not one already running)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise OreError("the Spark engine needs the optional extra: pip install 'ore[spark]' (and Java 17)") from None
    from splink.backends.spark import similarity_jar_location

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise OreError("the Spark engine needs Java (17): none on PATH and JAVA_HOME is not set")
    # Spark's Python workers run ore's functions: the same interpreter as this process, unless
    # the operator says otherwise (on a cluster, one with ore installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master or os.environ.get("ORE_SPARK_MASTER", "local[*]"))
               .appName("ore")
               .config("spark.jars", similarity_jar_location())
               .config("spark.driver.memory", memory or os.environ.get("ORE_SPARK_DRIVER_MEMORY", "4g"))
               .config("spark.sql.shuffle.partitions", os.environ.get("ORE_SPARK_SHUFFLE_PARTITIONS", "8"))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               # DuckDB's timestamps have no zone: Spark must not shift them by the machine's
               .config("spark.sql.session.timeZone", "UTC"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # DuckDB's hamming(), which the holdings blocking uses as a cheap test before a costlier one
    spark.udf.register("hamming", _hamming, "int")
    return spark


def _hamming(a: str | None, b: str | None) -> int | None:
    """Positions at which two strings of one length differ (as DuckDB's hamming)."""
    if a is None or b is None or len(a) != len(b):
        return None
    return sum(x != y for x, y in zip(a, b, strict=True))


def make_engine(name: str, workdir: Path | None = None) -> Engine:
    """The engine called ``name`` (``duckdb`` or ``spark``); Spark's files go under ``workdir``."""
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        base = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        spark = spark_session()
        work = Path(tempfile.mkdtemp(prefix="ore-spark-", dir=base))
        spark.sparkContext.setCheckpointDir(str(work / "checkpoints"))
        return SparkEngine(spark, work)
    raise OreError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")

"""The analyses on Spark: the same queries, transpiled from DuckDB SQL (an optional extra).

    pip install 'toolkit[spark]'

    con = toolkit.spark.connect(spark, events="s3://lake/events/", traces="lake.traces")
    toolkit.findings(con)          # the same filters and columns, pandas out

``events`` and ``traces`` are tables in the canonical schema (``toolkit/schema.sql``): a table
name, a Parquet path or a Spark DataFrame each. The derived tables the analyses start from are
built once per connection (cached). Every statement goes through :func:`transpile`.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pandas as pd

from toolkit.analyze import derived
from toolkit.analyze.scope import Query
from toolkit.db import tracer_of
from toolkit.spark.transpile import MAX_ROUNDS, Plan, plan

__all__ = ["SparkConnection", "connect", "from_duckdb", "transpile"]


def transpile(q: Query) -> Plan:
    """What Spark runs for an analysis's query: its parameters bound as literals, recursive
    and shared CTEs as steps computed first (``.text()`` is all of it as text)."""
    return plan(q.sql(), q.params)


# is_handled, set by an UPDATE on DuckDB: a join here
_UEV_COLUMNS = """k, trace_id, event_id, pk, sk, parent_id, parent_span_id, kind, name, type,
    source, target, ts, end_ts, status, idempotency_key, seq, records, sys, session, timeout_ms,
    parent_trace_id, sequence, reason"""
_HANDLED = f"""
    SELECT {", ".join("u." + c.strip() for c in _UEV_COLUMNS.split(","))},
           h.pk IS NOT NULL AS is_handled, u.after
    FROM _toolkit_uev0 u LEFT JOIN (
        SELECT DISTINCT pk FROM _toolkit_edge WHERE relation = 'causes') h ON h.pk = u.k"""


class SparkConnection:
    """A Spark session with the canonical tables as views: what the analyses take as ``con``."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def sql(self, sql: str) -> Any:
        """Run one (Spark) statement, traced like DuckDB's; returns the Spark DataFrame."""
        started = time.perf_counter()
        df = self.spark.sql(sql)
        traced = tracer_of(self)
        if traced is not None:
            traced(sql, {}, time.perf_counter() - started)
        return df

    def view(self, name: str, duckdb_sql: str) -> None:
        """Define temporary view ``name`` from a DuckDB statement, computed now and cached
        (the CTEs it computes first are dropped once it is)."""
        p = plan(duckdb_sql)
        try:
            self._steps(p)
            df = self.sql(p.sql).cache()
            df.count()
        finally:
            self._drop(p)
        df.createOrReplaceTempView(name)

    def frame(self, frame: pd.DataFrame) -> Any:
        """A pandas DataFrame as a Spark one (the schema from its dtypes: empty frames too)."""
        ready = _spark_ready(frame)
        schema = ", ".join(f"`{c}` {_spark_type(ready[c])}" for c in ready.columns)
        if (
            len(ready)
            and self.spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
        ):
            return self.spark.createDataFrame(ready, schema=schema)
        rows = [tuple(_python(v) for v in row) for row in ready.itertuples(index=False, name=None)]
        return self.spark.createDataFrame(rows, schema=schema)

    def run(self, q: Query) -> pd.DataFrame:
        """Run an analysis's query on Spark (``toolkit.analyze.scope.run`` calls this)."""
        for name, frame in q.frames.items():
            self.frame(frame).createOrReplaceTempView(name)
        p = transpile(q)
        try:
            self._steps(p)
            started = time.perf_counter()
            out = self.spark.sql(p.sql).toPandas()
            traced = tracer_of(self)
            if traced is not None:
                traced(p.sql, {}, time.perf_counter() - started)
        finally:
            self._drop(p)
        return _like_duckdb(out)[q.columns]

    def _steps(self, p: Plan) -> None:
        """Compute the CTEs that ``p`` takes out, in order, each as its temporary view."""
        for s in p.steps:
            if s.step is None:
                self._materialize(s.name, s.columns, s.base)
            else:
                self._fixpoint(s.name, s.columns, s.base, s.step)

    def _drop(self, p: Plan) -> None:
        for s in p.steps:
            self.spark.catalog.dropTempView(s.name)

    def _materialize(self, name: str, columns: list[str], base: str) -> None:
        """A CTE's rows, computed once, as temporary view ``name`` (checkpointed: the plans
        that read it see a table, not the CTE's plan again)."""
        sql = f"SELECT * FROM ({base}) AS b({', '.join(columns)})" if columns else base
        self.sql(sql).localCheckpoint().createOrReplaceTempView(name)

    def _fixpoint(self, name: str, columns: list[str], base: str, step: str) -> None:
        """A recursive CTE's rows, as temporary view ``name``: ``base``, then ``step`` over the
        rows new in the round before, until a round adds none (UNION semantics)."""
        # Spark 4.0's constraint propagation fails on a union of checkpointed rounds (an
        # attribute it cannot find): off while iterating
        conf = "spark.sql.constraintPropagation.enabled"
        before = self.spark.conf.get(conf, "true")
        self.spark.conf.set(conf, "false")
        try:
            self._iterate(name, columns, base, step)
        finally:
            self.spark.conf.set(conf, before)
            self.spark.catalog.dropTempView("_toolkit_seen")

    def _iterate(self, name: str, columns: list[str], base: str, step: str) -> None:
        cols = ", ".join(columns)
        seen = self.sql(f"SELECT DISTINCT * FROM ({base}) AS b({cols})").localCheckpoint()
        seen.createOrReplaceTempView("_toolkit_seen")
        seen.createOrReplaceTempView(name)
        for _ in range(MAX_ROUNDS):
            new = self.sql(f"SELECT * FROM ({step}) AS s({cols}) "
                           "EXCEPT SELECT * FROM _toolkit_seen").localCheckpoint()  # fmt: skip
            if new.isEmpty():
                seen.createOrReplaceTempView(name)
                return
            new.createOrReplaceTempView(name)
            seen = seen.unionAll(new).localCheckpoint()
            seen.createOrReplaceTempView("_toolkit_seen")
        raise RuntimeError(f"recursive CTE {name} did not converge in {MAX_ROUNDS} rounds")


def _spark_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
        elif out[column].dtype == object or str(out[column].dtype).startswith("str"):
            out[column] = out[column].astype(object)
    return out


def _python(value: Any) -> Any:
    """A pandas / numpy scalar as the plain Python value Spark accepts."""
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value.item() if hasattr(value, "item") else value


def _spark_type(column: pd.Series) -> str:
    kind = column.dtype.kind
    if pd.api.types.is_datetime64_any_dtype(column):
        return "timestamp"
    return {"i": "bigint", "u": "bigint", "f": "double", "b": "boolean"}.get(kind, "string")


def _like_duckdb(df: pd.DataFrame) -> pd.DataFrame:
    """Spark's timestamps are naive (the session is in UTC): make them UTC like DuckDB's; its
    decimals (``0.8`` is a decimal literal on both) arrive as ``Decimal`` objects, DuckDB's as
    floats."""
    for column in df.columns:
        if pd.api.types.is_datetime64_dtype(df[column]):
            df[column] = df[column].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        elif df[column].dtype == object and df[column].map(type).eq(Decimal).any():
            df[column] = df[column].astype("float64")
    return df


def _table(spark: Any, source: Any) -> Any:
    if not isinstance(source, str):
        return source  # a Spark DataFrame
    if "/" in source or source.endswith(".parquet"):
        return spark.read.parquet(source)
    return spark.table(source)


def from_duckdb(spark: Any, con: Any) -> SparkConnection:
    """A Spark connection over the canonical tables of a DuckDB connection (tests, benchmarks:
    on a cluster, point :func:`connect` at the lake's tables instead)."""
    shim = SparkConnection(spark)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    events = con.execute("SELECT * REPLACE (attrs::VARCHAR AS attrs) FROM events").df()
    traces = con.execute("SELECT * REPLACE (attrs::VARCHAR AS attrs) FROM traces").df()
    return connect(spark, events=shim.frame(events), traces=shim.frame(traces))


def connect(spark: Any, *, events: Any, traces: Any) -> SparkConnection:
    """A connection for the analyses over canonical tables on Spark.

    Args:
        spark: a ``SparkSession``; its time zone is set to UTC (timestamps are UTC).
        events: the ``events`` table: a table name, a Parquet path or a Spark DataFrame.
        traces: the ``traces`` table, the same ways.

    Returns:
        A connection to pass to ``toolkit.findings`` and the other analyses.
    """
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    con = SparkConnection(spark)
    _table(spark, events).createOrReplaceTempView("events")
    _table(spark, traces).createOrReplaceTempView("traces")
    con.view("_toolkit_uev0", derived.UEV_SQL.format(scope="true"))
    edges = derived.EDGE_SQL.format(uev="_toolkit_uev0", scope="true")
    con.view("_toolkit_edge", derived.PARENT_SQL.format(edges=edges, uev="_toolkit_uev0"))
    con.view("_toolkit_uev", _HANDLED)
    return con

"""DuckDB SQL to Spark SQL: sqlglot's transpiler plus a small set of tested AST rewrites.

The analyses' DuckDB SQL stays the single definition. sqlglot carries most of it across; the
rewrites below fix what it gets silently wrong or what Spark 4.0 lacks (each measured):

* ``hash(a, b)``: DuckDB's hash is 64-bit, Spark's ``hash`` 32-bit (collisions at our sizes):
  ``xxhash64``.
* ``epoch_us(t)`` (microseconds since the epoch; sqlglot does not know it): ``unix_micros``.
* ``regexp_matches(x, p, 'i')``: the flag is dropped on the way to ``RLIKE``: ``(?i)`` is put in
  front of the pattern instead.
* ``quantile_cont(x, q)`` (``q`` a fraction or a list of them): ``percentile`` (exact, linear
  interpolation, like DuckDB's).
* ``arg_min(x, (a, b))``: a row value is a ``struct`` in Spark.
* ``list(x ORDER BY a, b)``: Spark's ``collect_list`` takes no order (sqlglot drops it, and
  with it the order) and skips NULLs: the rows are collected as structs (NULLs last, like
  DuckDB's default), sorted, and ``x`` taken out of each.
* ``CAST(CAST(x AS DOUBLE) AS VARCHAR)``: DuckDB prints a double as its shortest round-trip
  digits (``97401902.911``, ``1e+16``), Spark in Java's notation (``9.7401902911E7``). The
  DuckDB SQL says where a double becomes text with this explicit double cast (a no-op there);
  on Spark it becomes an expression that prints it the DuckDB way (a NaN is ``nan``: DuckDB's
  ``-nan`` has no Spark equivalent).
* A CTE that Spark would compute more than once (it inlines a CTE at each reference: a chain
  of CTEs that each read the one before two or three times becomes a plan of thousands of
  nodes, whose tasks no longer fit in memory) is taken out as a :class:`Step` and computed
  once, as a temporary view, when it aggregates, deduplicates or has a subquery.
* ``WITH RECURSIVE``: Spark 4.0 has no recursive CTEs; a recursive CTE ``x`` of the form
  ``base UNION step(x)`` is taken out as a :class:`Step` with a ``step`` that ``toolkit.spark``
  computes by iteration (new rows each round, until none), then the statement reads it as a
  table. Unrolling it into a fixed number of joins was tried: Spark's planner ran out of memory
  on the result.

A CTE taken out is read under the name ``_toolkit_cte_<name>`` (:func:`view_name`), so that it
can neither replace nor be replaced by a table of the session.

Parameters are bound on the syntax tree (a ``$name`` placeholder becomes a literal node), never
by formatting text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlglot
from sqlglot import exp

MAX_ROUNDS = 1000  # a fixpoint that has not converged by then is an error


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal node."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    if isinstance(value, datetime):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.Literal.string(str(value))


def bind(tree: exp.Expression, params: dict[str, Any]) -> exp.Expression:
    """Replace each ``$name`` placeholder by its value as a literal node."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name in params:
            return literal(params[node.name])
        return node

    return tree.transform(swap)


def _hash(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    return node


def _epoch_us(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
        return exp.Anonymous(this="unix_micros", expressions=node.expressions)
    return node


def _regex_flags(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.RegexpLike) and node.args.get("flag") is not None:
        flag = node.args["flag"]
        if not isinstance(flag, exp.Literal) or set(flag.name) - {"i"}:
            raise ValueError(f"regex flag {flag.sql()} has no Spark equivalent")
        pattern = node.expression
        if "i" in flag.name and isinstance(pattern, exp.Literal) and pattern.is_string:
            pattern = exp.Literal.string("(?i)" + pattern.name)
        elif "i" in flag.name:
            pattern = exp.Paren(this=exp.DPipe(this=exp.Literal.string("(?i)"), expression=pattern))
        return exp.RegexpLike(this=node.this, expression=pattern)
    return node


def _percentile(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.PercentileCont | exp.Quantile) and node.args.get("expression"):
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    return node


def _row_values(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.ArgMin | exp.ArgMax) and isinstance(node.expression, exp.Tuple):
        struct = exp.Struct(expressions=list(node.expression.expressions))
        return node.__class__(this=node.this, expression=struct)
    return node


# DuckDB's text for a double: its shortest digits that read back as the same double (``d``,
# without trailing zeros; Java 17's Double.toString is not always the shortest) and the decimal
# exponent of the first (``e``), printed the way DuckDB (and Python's repr) print them: plain
# from 1e-4 up to 1e16, else ``d.ddde+XX``. The digits are those of the first of
# ``%.0e``...``%.16e`` that reads back as the double.
_DOUBLE_TEXT = sqlglot.parse_one(
    """TRANSFORM(ARRAY(_x), v -> CASE
        WHEN v IS NULL THEN NULL WHEN ISNAN(v) THEN 'nan'
        WHEN v = CAST('Infinity' AS DOUBLE) THEN 'inf'
        WHEN v = CAST('-Infinity' AS DOUBLE) THEN '-inf'
        ELSE TRANSFORM(ARRAY(FILTER(
                TRANSFORM(SEQUENCE(0, 16), n -> FORMAT_STRING(CONCAT('%.', n, 'e'), v)),
                c -> CAST(c AS DOUBLE) = v)[0]),
            c -> TRANSFORM(ARRAY(NAMED_STRUCT(
                    'neg', c LIKE '-%',
                    'd', REGEXP_REPLACE(REPLACE(REGEXP_EXTRACT(c, '^-?([0-9.]+)e', 1), '.', ''),
                                        '0+$', ''),
                    'e', CAST(REGEXP_EXTRACT(c, 'e([-+][0-9]+)$', 1) AS INT))),
                q -> CASE WHEN q.neg THEN '-' ELSE '' END || CASE
                    WHEN q.d = '' THEN '0.0'
                    WHEN q.e >= 16 OR q.e < -4 THEN SUBSTR(q.d, 1, 1)
                        || CASE WHEN LENGTH(q.d) > 1 THEN '.' || SUBSTR(q.d, 2) ELSE '' END
                        || 'e' || CASE WHEN q.e < 0 THEN '-' ELSE '+' END
                        || CASE WHEN ABS(q.e) < 10 THEN '0' ELSE '' END || CAST(ABS(q.e) AS STRING)
                    WHEN q.e < 0 THEN '0.' || REPEAT('0', -q.e - 1) || q.d
                    WHEN LENGTH(q.d) <= q.e + 1 THEN q.d || REPEAT('0', q.e + 1 - LENGTH(q.d)) || '.0'
                    ELSE SUBSTR(q.d, 1, q.e + 1) || '.' || SUBSTR(q.d, q.e + 2) END)[0])[0]
        END)[0]""",
    read="spark",
)


def _double_text(node: exp.Expression) -> exp.Expression:
    if (
        isinstance(node, exp.Cast)
        and node.to.this in (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR)
        and isinstance(node.this, exp.Cast)
        and node.this.to.this == exp.DataType.Type.DOUBLE
    ):
        inner = node.this.copy()
        return _DOUBLE_TEXT.transform(
            lambda n: inner.copy() if isinstance(n, exp.Column) and n.name == "_x" else n
        )
    return node


def view_name(cte: str) -> str:
    """The temporary view a CTE taken out of a statement is read as."""
    return f"_toolkit_cte_{cte}"


def _ordered_list(node: exp.Expression) -> exp.Expression:
    if not (isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order)):
        return node
    order = node.this
    if any(o.args.get("desc") or o.args.get("nulls_first") for o in order.expressions):
        raise ValueError(f"{node.sql()}: only ascending orders, NULLs last, have a Spark rewrite")
    # each key behind a flag that sorts its NULLs last (Spark sorts NULL fields first)
    fields = [f"'n{i}', _k{i} IS NULL, 'k{i}', _k{i}" for i in range(len(order.expressions))]
    template = sqlglot.parse_one(
        f"TRANSFORM(ARRAY_SORT(COLLECT_LIST(NAMED_STRUCT({', '.join(fields)}, 'v', _v))), "
        "r -> r.v)",
        read="spark",
    )
    parts = {f"_k{i}": o.this for i, o in enumerate(order.expressions)} | {"_v": order.this}
    return template.transform(
        lambda n: parts[n.name].copy() if isinstance(n, exp.Column) and n.name in parts else n
    )


@dataclass
class Step:
    """A CTE computed before the statement, as temporary view ``name``: the rows of ``base``
    (a Spark statement, the CTEs before it included), and for a recursive CTE the rows that
    ``step`` adds round by round (it reads the rows new in the round before as ``name``)."""

    name: str
    columns: list[str]
    base: str
    step: str | None = None


@dataclass
class Plan:
    """A statement for Spark: the CTEs to compute first, in order, then the statement itself
    (which reads them as tables)."""

    steps: list[Step]
    sql: str

    @property
    def fixpoints(self) -> list[Step]:
        """The steps that are recursive CTEs."""
        return [s for s in self.steps if s.step is not None]

    def text(self) -> str:
        """Everything Spark runs, as one text (what the golden tests compare)."""
        parts = []
        for s in self.steps:
            head = f"-- {'fixpoint' if s.step else 'view'} {s.name}({', '.join(s.columns)})"
            parts.append(f"{head}\n-- base\n{s.base}" + (f"\n-- step\n{s.step}" if s.step else ""))
        return "\n".join([*parts, self.sql]) + "\n"


def _with_ctes(select: exp.Expression, ctes: list[exp.CTE]) -> exp.Expression:
    out = select.copy()
    if ctes:
        out.set("with_", exp.With(expressions=[c.copy() for c in ctes]))
    return out


def _references(node: exp.Expression, names: set[str]) -> dict[str, int]:
    """How often each of ``names`` is read as a table in ``node``."""
    counts = dict.fromkeys(names, 0)
    for table in node.find_all(exp.Table):
        if table.name in counts and not table.args.get("db"):
            counts[table.name] += 1
    return counts


def _costly(body: exp.Expression) -> bool:
    """Whether computing a CTE twice costs more than a scan: it aggregates, deduplicates, or
    has a subquery or set operation."""
    kinds = (exp.AggFunc, exp.Window, exp.Distinct, exp.Subquery, exp.Exists, exp.SetOperation)
    return any(True for _ in body.find_all(*kinds))


def _shared(ctes: list[exp.CTE], recursive: set[str], select: exp.Expression) -> set[str]:
    """The costly CTEs Spark would compute more than once: read twice or more by the
    statement once the CTEs after them are inlined (a recursive CTE's reads count twice:
    its step runs every round)."""
    names = {c.alias_or_name for c in ctes}
    times = _references(select, names)
    shared: set[str] = set()
    for cte in reversed(ctes):
        name = cte.alias_or_name
        if name in recursive or (times[name] >= 2 and _costly(cte.this)):
            weight = 2 if name in recursive else 1
            shared.add(name)
        else:
            weight = times[name]
        for other, n in _references(cte.this, names - {name}).items():
            times[other] += n * weight
    return shared - recursive


def _split(tree: exp.Expression) -> tuple[exp.Expression, list[Step]]:
    """Take the recursive CTEs and the shared costly ones out of ``tree`` as :class:`Step`
    (Spark 4.0 has no ``WITH RECURSIVE``, and it inlines every CTE)."""
    with_ = tree.args.get("with_")
    if with_ is None:
        return tree, []
    ctes = list(with_.expressions)
    recursive = {
        c.alias_or_name for c in ctes
        if isinstance(c.this, exp.Union)
        and any(t.name == c.alias_or_name for t in c.this.expression.find_all(exp.Table))
    }  # fmt: skip
    statement = tree.copy()
    statement.set("with_", None)
    taken = recursive | _shared(ctes, recursive, statement)
    tree = tree.transform(lambda n: _read_view(n, taken))
    kept: list[exp.CTE] = []
    steps = []
    for cte in tree.args["with_"].expressions:
        name = cte.alias_or_name
        alias = cte.args["alias"]
        columns = [c.name for c in alias.columns] if alias.columns else []
        if name in recursive:
            body = cte.this
            steps.append(Step(view_name(name), columns,
                              _with_ctes(body.this, kept).sql(dialect="spark"),
                              _with_ctes(body.expression, kept).sql(dialect="spark")))  # fmt: skip
        elif name in taken:
            steps.append(
                Step(view_name(name), columns, _with_ctes(cte.this, kept).sql(dialect="spark"))
            )
        else:
            kept.append(cte)
    with_ = tree.args["with_"]
    with_.set("expressions", kept)
    with_.set("recursive", False)
    if not kept:
        tree.set("with_", None)
    return tree, steps


def _read_view(node: exp.Expression, taken: set[str]) -> exp.Expression:
    """A table read of a CTE taken out, as a read of its view (under the CTE's name)."""
    if isinstance(node, exp.Table) and node.name in taken and not node.args.get("db"):
        return exp.Table(
            this=exp.to_identifier(view_name(node.name)),
            alias=node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name)),
        )
    return node


def _cte_hint(node: exp.Expression) -> exp.Expression:
    # DuckDB's ``AS NOT MATERIALIZED`` (a plan hint; Spark has no such syntax and decides itself)
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node = node.copy()
        node.set("materialized", None)
    return node


REWRITES = (
    _hash,
    _epoch_us,
    _regex_flags,
    _percentile,
    _row_values,
    _double_text,
    _ordered_list,
    _cte_hint,
)


def plan(sql: str, params: dict[str, Any] | None = None) -> Plan:
    """The DuckDB statement ``sql`` for Spark, with ``params`` bound as literals."""
    tree: exp.Expression = sqlglot.parse_one(sql, read="duckdb")  # type: ignore[assignment]
    tree = bind(tree, params or {})
    for rewrite in REWRITES:
        tree = tree.transform(rewrite)
    tree, steps = _split(tree)
    return Plan(steps, tree.sql(dialect="spark"))


def to_spark(sql: str, params: dict[str, Any] | None = None) -> str:
    """The DuckDB statement ``sql`` as one Spark statement (no CTE taken out allowed)."""
    p = plan(sql, params)
    if p.steps:
        raise ValueError("a recursive or shared CTE needs plan() and its steps computed first")
    return p.sql

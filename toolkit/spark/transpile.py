"""DuckDB SQL to Spark SQL: sqlglot's transpiler plus a small set of tested AST rewrites.

The analyses' DuckDB SQL stays the single definition. sqlglot carries most of it across; the
rewrites below fix what it gets silently wrong or what Spark 4.0 lacks (each measured):

* ``hash(a, b)``: DuckDB's hash is 64-bit, Spark's ``hash`` 32-bit (collisions at our sizes):
  ``xxhash64``.
* ``regexp_matches(x, p, 'i')``: the flag is dropped on the way to ``RLIKE``: ``(?i)`` is put in
  front of the pattern instead.
* ``quantile_cont(x, q)``: ``percentile`` (exact, linear interpolation, like DuckDB's).
* ``arg_min(x, (a, b))``: a row value is a ``struct`` in Spark.
* ``WITH RECURSIVE``: Spark 4.0 has no recursive CTEs; a recursive CTE ``x`` of the form
  ``base UNION step(x)`` is taken out as a :class:`Fixpoint` that ``toolkit.spark`` computes by
  iteration (new rows each round, until none), then the statement reads it as a table. Unrolling
  it into a fixed number of joins was tried: Spark's planner ran out of memory on the result.

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


@dataclass
class Fixpoint:
    """A recursive CTE ``name(columns) AS (base UNION step)``, computed by iteration on Spark:
    ``base`` and ``step`` are Spark statements (the CTEs before it included); ``step`` reads the
    rows found in the previous round as the table ``name``."""

    name: str
    columns: list[str]
    base: str
    step: str


@dataclass
class Plan:
    """A statement for Spark: the recursive CTEs to compute first, then the statement itself
    (which reads them as tables)."""

    fixpoints: list[Fixpoint]
    sql: str

    def text(self) -> str:
        """Everything Spark runs, as one text (what the golden tests compare)."""
        parts = [f"-- fixpoint {f.name}({', '.join(f.columns)})\n-- base\n{f.base}\n-- step\n{f.step}"
                 for f in self.fixpoints]  # fmt: skip
        return "\n".join([*parts, self.sql]) + "\n"


def _with_ctes(select: exp.Expression, ctes: list[exp.CTE]) -> exp.Expression:
    out = select.copy()
    if ctes:
        out.set("with_", exp.With(expressions=[c.copy() for c in ctes]))
    return out


def _split_recursive(tree: exp.Expression) -> tuple[exp.Expression, list[Fixpoint]]:
    """Take each recursive CTE out of ``tree`` as a :class:`Fixpoint` (Spark 4.0 has no
    ``WITH RECURSIVE``)."""
    with_ = tree.args.get("with_")
    if with_ is None:
        return tree, []
    kept: list[exp.CTE] = []
    fixpoints = []
    for cte in with_.expressions:
        name, body = cte.alias_or_name, cte.this
        if isinstance(body, exp.Union) and any(
            t.name == name for t in body.expression.find_all(exp.Table)
        ):
            alias = cte.args["alias"]
            columns = [c.name for c in alias.columns] if alias.columns else []
            fixpoints.append(Fixpoint(name, columns,
                                      _with_ctes(body.this, kept).sql(dialect="spark"),
                                      _with_ctes(body.expression, kept).sql(dialect="spark")))  # fmt: skip
        else:
            kept.append(cte)
    with_.set("expressions", kept)
    with_.set("recursive", False)
    if not kept:
        tree.set("with_", None)
    return tree, fixpoints


REWRITES = (_hash, _regex_flags, _percentile, _row_values)


def plan(sql: str, params: dict[str, Any] | None = None) -> Plan:
    """The DuckDB statement ``sql`` for Spark, with ``params`` bound as literals."""
    tree: exp.Expression = sqlglot.parse_one(sql, read="duckdb")  # type: ignore[assignment]
    tree = bind(tree, params or {})
    for rewrite in REWRITES:
        tree = tree.transform(rewrite)
    tree, fixpoints = _split_recursive(tree)
    return Plan(fixpoints, tree.sql(dialect="spark"))


def to_spark(sql: str, params: dict[str, Any] | None = None) -> str:
    """The DuckDB statement ``sql`` as one Spark statement (no recursive CTE allowed)."""
    p = plan(sql, params)
    if p.fixpoints:
        raise ValueError("a recursive CTE needs plan() and a fixpoint loop")
    return p.sql

"""Each event-flow rule on small literal traces, including ones that must yield nothing."""

from __future__ import annotations

import pandas as pd
import pytest

import toolkit
from tests.analyze.cases import T0, ce, chain, load

ANALYSES = [toolkit.unhandled_events, toolkit.duplicates, toolkit.late_events, toolkit.hangs,
            toolkit.escalations, toolkit.findings, toolkit.flow_edges, toolkit.latency, toolkit.summary]  # fmt: skip


def rows(df: pd.DataFrame, *cols: str) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in r) for r in df[list(cols)].itertuples(index=False)
    ]


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda f: f.__name__)
def test_empty_database_gives_the_documented_columns_and_no_rows(con, analysis):
    df = analysis(con)
    assert df.empty and len(df.columns) > 2


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda f: f.__name__)
def test_a_trace_with_one_event_and_no_time_breaks_nothing(con, tmp_path, analysis):
    load(con, tmp_path, [ce("only", "hello", t=None)])
    analysis(con)  # no exception; findings of a lone event are empty
    assert toolkit.findings(con).empty


# ---- unhandled -------------------------------------------------------------------------------


def _requests(n: int, answered: int) -> list[dict]:
    """n traces where 'order.placed' is handled by 'order.packed' in the first `answered`."""
    out = []
    for i in range(n):
        out += chain(
            f"o{i}", ["order.placed", "order.packed"] if i < answered else ["order.placed"]
        )
    return out


def test_unhandled_when_the_type_is_usually_handled(con, tmp_path):
    load(con, tmp_path, _requests(4, 3))
    df = toolkit.unhandled_events(con)
    assert rows(df, "trace_id", "event_id") == [("o3", "o3-0")]
    assert "handled in 75% of 4 order.placed events" in df.loc[0, "reason"]


@pytest.mark.parametrize(("n", "answered", "kwargs"), [
    (4, 1, {}),                      # handled in 25%: not expected to be handled
    (2, 1, {}),                      # too few occurrences to decide
    (4, 3, {"threshold": 0.9}),      # stricter threshold
    (4, 4, {}),                      # all handled
])  # fmt: skip
def test_no_unhandled_when_the_data_does_not_expect_a_handler(con, tmp_path, n, answered, kwargs):
    load(con, tmp_path, _requests(n, answered))
    assert toolkit.unhandled_events(con, **kwargs).empty


def test_declared_subscriptions_override_the_data(con, tmp_path):
    load(con, tmp_path, _requests(2, 0))
    df = toolkit.unhandled_events(con, subscriptions={"order.placed": ["packer", "mailer"]})
    assert rows(df, "event_id") == [("o0-0",), ("o1-0",)]
    assert "declared: mailer, packer subscribe to order.placed" in df.loc[0, "reason"]
    subs = pd.DataFrame({"type": ["order.placed"], "handler": ["packer"]})
    assert len(toolkit.unhandled_events(con, subscriptions=subs)) == 2


def test_a_link_from_another_trace_counts_as_handled(con, tmp_path):
    records = [
        *_requests(4, 3),
        ce("c1", "order.packed", parent="o3-0", trace="other", parenttraceid="o3"),
    ]
    load(con, tmp_path, records)
    assert toolkit.unhandled_events(con).empty


def test_an_orphan_parent_is_not_an_error(con, tmp_path):
    load(con, tmp_path, [*_requests(4, 4), ce("x", "order.packed", parent="missing", trace="o9")])
    assert toolkit.unhandled_events(con).empty
    assert toolkit.event_graph(con, "o9").nodes["x"]["parent_missing"] is True


# ---- duplicates and idempotency ---------------------------------------------------------------


def test_redelivery_is_one_duplicate_row(con, tmp_path):
    load(
        con,
        tmp_path,
        [
            ce("a", "x"),
            ce("b", "y", parent="a", t=1),
            ce("b", "y", parent="a", t=1, deliverycount=2),
        ],
    )
    df = toolkit.duplicates(con)
    assert rows(df, "event_id", "kind", "copies") == [("b", "duplicate", 2)]
    # the redelivered event is still one node, handled once
    assert toolkit.event_graph(con, "t1").nodes["b"]["records"] == 2


def test_same_id_from_two_sources_is_not_a_duplicate(con, tmp_path):
    load(con, tmp_path, [ce("a", "x", src="client"), ce("a", "x", src="server", t=1)])
    assert toolkit.duplicates(con).empty


def test_effect_done_twice_for_one_key_is_a_violation(con, tmp_path):
    load(con, tmp_path, [
        ce("req", "pay.requested", src="shop", key="k1", timeout=5000),
        ce("r1", "pay.done", src="bank", parent="req", key="k1", t=1),
        ce("r2", "pay.done", src="bank", parent="req", key="k1", t=2),
        ce("ok", "receipt", src="shop", parent="r1", t=3),
    ])  # fmt: skip
    df = toolkit.duplicates(con)
    assert rows(df, "event_id", "kind", "first_event_id") == [("r2", "idempotency_violation", "r1")]
    assert toolkit.unhandled_events(con).empty  # the extra effect is reported once, here


def test_three_effects_for_one_key_count_the_whole_group(con, tmp_path):
    load(con, tmp_path, [
        ce("req", "pay.requested", src="shop", key="k1"),
        ce("r1", "pay.done", src="bank", parent="req", key="k1", t=1),
        ce("r2", "pay.done", src="bank", parent="req", key="k1", t=2),
        ce("r3", "pay.done", src="bank", parent="req", key="k1", t=3),
    ])  # fmt: skip
    df = toolkit.duplicates(con)
    assert rows(df, "event_id", "copies", "first_event_id") == [("r2", 3, "r1"), ("r3", 3, "r1")]
    assert [d.split(" for ")[0] for d in df["detail"]] == ["effect 2 of 3", "effect 3 of 3"]


def test_a_retried_request_with_the_same_key_and_one_effect_is_a_duplicate_send_only(con, tmp_path):
    load(con, tmp_path, [
        ce("q1", "pay.requested", src="shop", key="k1"),
        ce("q2", "pay.requested", src="shop", key="k1", t=1),
        ce("r1", "pay.done", src="bank", parent="q2", key="k1", t=2),
    ])  # fmt: skip
    assert rows(toolkit.duplicates(con), "event_id", "kind") == [("q2", "duplicate")]


def test_one_effect_per_key_is_clean(con, tmp_path):
    load(
        con,
        tmp_path,
        [ce("q", "pay.requested", key="k"), ce("r", "pay.done", src="b", parent="q", key="k", t=1)],
    )
    assert toolkit.duplicates(con).empty


# ---- late and out of order --------------------------------------------------------------------


def _ended(trace: str, extra: list[dict]) -> list[dict]:
    return chain(trace, ["start", "work", "done"]) + extra


def test_event_after_the_terminal_event_is_late(con, tmp_path):
    records = (
        _ended("a", [])
        + _ended("b", [])
        + _ended("c", [ce("c-late", "work", parent="c-1", t=5, trace="c")])
    )
    load(con, tmp_path, records)
    df = toolkit.late_events(con)
    assert rows(df, "event_id", "kind", "reference_event_id", "delay_s") == [
        ("c-late", "late", "c-2", 3.0)
    ]


def test_equal_timestamps_are_neither_late_nor_out_of_order(con, tmp_path):
    records = _ended("a", []) + _ended("b", [ce("b-same", "work", parent="b-2", t=2, trace="b")])
    load(con, tmp_path, records)
    assert toolkit.late_events(con, terminal_types=["done"]).empty


def test_response_after_timeout_or_after_requester_moved_on_is_late(con, tmp_path):
    load(con, tmp_path, [
        ce("q1", "call", src="agent", target="tool", timeout=1000),
        ce("r1", "reply", src="tool", parent="q1", t=2.5),            # after the 1 s timeout
        ce("q2", "call", src="agent", target="tool", timeout=10000, t=3, trace="t2"),
        ce("g2", "gave_up", src="agent", parent="q2", t=4, trace="t2"),
        ce("r2", "reply", src="tool", parent="q2", t=5, trace="t2"),  # within timeout, but too late
        ce("q3", "call", src="agent", target="tool", timeout=1000, t=6, trace="t3"),
        ce("r3", "reply", src="tool", parent="q3", t=6.5, trace="t3"),  # in time
    ])  # fmt: skip
    df = toolkit.late_events(con)
    assert rows(df, "event_id", "kind", "reference_event_id") == [
        ("r1", "late", "q1"),
        ("r2", "late", "q2"),
    ]
    assert "1000" in df.loc[0, "detail"] and "moved on" in df.loc[1, "detail"]
    assert toolkit.unhandled_events(con).empty


def test_child_before_parent_is_out_of_order_with_the_skew(con, tmp_path):
    load(con, tmp_path, [ce("p", "call", t=10), ce("c", "reply", src="b", parent="p", t=9.75)])
    df = toolkit.late_events(con)
    assert rows(df, "event_id", "kind", "delay_s") == [("c", "out_of_order", -0.25)]
    assert "250.0 ms before its parent" in df.loc[0, "detail"]


def test_sequence_going_backwards_per_source(con, tmp_path):
    load(con, tmp_path, [ce("a", "m", sequence="1", t=1), ce("b", "m", sequence="2", t=2),
                         ce("c", "m", sequence="10", t=3), ce("d", "m", sequence="9", t=4),
                         ce("e", "m", src="other", sequence="1", t=5)])  # fmt: skip
    assert rows(toolkit.late_events(con), "event_id", "kind", "reference_event_id") == [
        ("d", "out_of_order", "c")
    ]


# ---- hangs and missing terminal ---------------------------------------------------------------


def test_request_without_response_is_a_hang_after_its_timeout(con, tmp_path):
    load(con, tmp_path, [
        ce("q", "call", src="agent", target="tool", timeout=1000),
        ce("own", "note", src="agent", parent="q", t=0.5),   # the requester's own follow-up is no answer
        ce("later", "tick", src="clock", t=5, trace="t2"),
    ])  # fmt: skip
    df = toolkit.hangs(con)
    assert rows(df, "event_id", "kind", "waited_s") == [("q", "hang", 5.0)]
    assert toolkit.hangs(con, as_of="2026-01-01T00:00:00.5Z").empty  # not yet past its timeout


def test_timeout_argument_checks_usually_answered_types_without_declared_timeouts(con, tmp_path):
    records = []
    for i in range(3):
        records += [
            ce(f"q{i}", "ask", src="a", trace=f"t{i}"),
            ce(f"r{i}", "answer", src="b", parent=f"q{i}", t=1, trace=f"t{i}"),
        ]
    records += [ce("q9", "ask", src="a", trace="t9", t=2)]
    load(con, tmp_path, [*records, ce("z", "tick", src="c", t=100, trace="tz")])
    assert toolkit.hangs(con, terminal_types=[]).empty
    assert rows(toolkit.hangs(con, timeout=60, terminal_types=[]), "event_id", "kind") == [
        ("q9", "hang")
    ]


def test_trace_without_terminal_event_points_at_its_last_event(con, tmp_path):
    records = _ended("a", []) + _ended("b", []) + chain("c", ["start", "work"])
    load(con, tmp_path, records)
    assert rows(toolkit.hangs(con), "trace_id", "event_id", "kind") == [
        ("c", "c-1", "missing_terminal")
    ]


def test_no_terminal_types_in_the_data_means_no_missing_terminal(con, tmp_path):
    load(con, tmp_path, chain("a", ["msg", "msg", "msg"]) + chain("b", ["msg", "msg"]))
    assert toolkit.hangs(con).empty


def test_a_wait_is_measured_to_its_own_system_not_to_another_systems_later_data(con, tmp_path):
    day = 86_400
    load(con, tmp_path, [
        ce("q", "call", src="agent", target="tool", timeout=1000, system="alpha"),
        ce("end", "tick", src="clock", t=5, trace="t2", system="alpha"),
        ce("far", "tick", src="clock", t=60 * day, trace="t3", system="beta"),
    ])  # fmt: skip
    assert rows(toolkit.hangs(con), "event_id", "waited_s") == [("q", 5.0)]
    assert rows(toolkit.hangs(con, as_of="2026-01-02T00:00:00Z"), "event_id", "waited_s") == [
        ("q", day)
    ]


def test_on_a_live_connection_a_run_still_going_is_not_a_hang(con, tmp_path):
    from datetime import UTC, datetime

    from toolkit.db import mark_live

    now = datetime.now(UTC)
    seconds = (now - T0).total_seconds()
    records = _ended("a", []) + _ended("b", [])
    records += chain("c", ["start", "work"], t0=seconds - 1000)  # quiet for 1000 s: over
    records += chain("d", ["start", "work"], t0=seconds - 10)  # active 9 s ago: still open
    load(con, tmp_path, records)
    missing = [("c", "missing_terminal"), ("d", "missing_terminal")]
    assert rows(toolkit.hangs(con), "trace_id", "kind") == missing  # files: judged at the end
    mark_live(con, True)
    try:
        assert rows(toolkit.hangs(con), "trace_id", "kind") == [("c", "missing_terminal")]
        assert rows(toolkit.hangs(con, grace=0), "trace_id", "kind") == missing
        assert set(toolkit.findings(con).query("kind == 'missing_terminal'")["trace_id"]) == {"c"}
        assert list(toolkit.open_traces(con)["trace_id"]) == ["d"]
        assert 998 < toolkit.hangs(con).loc[0, "waited_s"] < 1100  # to now, not to the data's end
    finally:
        mark_live(con, False)
    assert rows(toolkit.hangs(con), "trace_id", "kind") == missing


# ---- escalations ------------------------------------------------------------------------------


def test_escalation_trigger_and_time_to_resolve(con, tmp_path):
    load(con, tmp_path, [
        ce("a", "answer", src="bot", content_hint=None, data="I am not sure about the refund", t=0),
        ce("e", "handoff.requested", src="bot", parent="a", target="human", t=1, data="please check"),
        ce("h", "handoff.resolved", src="human", parent="e", t=61),
        ce("e2", "ask", src="bot", target="Human", t=2, trace="t2", status="timeout"),
    ])  # fmt: skip
    df = toolkit.escalations(con)
    assert rows(df, "event_id", "trigger", "resolved_by", "time_to_resolve_s") == [
        ("e", "unknown", "h", 60.0),
        ("e2", "timeout", None, None),
    ]


def test_no_escalation_without_human_or_handoff(con, tmp_path):
    load(con, tmp_path, _ended("a", []))
    assert toolkit.escalations(con).empty


# ---- graphs, latency, critical path -----------------------------------------------------------


def test_event_graph_causal_edges_and_follows_for_chat_logs(con, tmp_path):
    load(
        con,
        tmp_path,
        [
            *_ended("a", []),
            ce("m1", "msg", t=0, trace="chat"),
            ce("m2", "msg", src="b", t=1, trace="chat"),
        ],
    )
    g = toolkit.event_graph(con, "a")
    assert sorted(g.edges(data="kind")) == [("a-0", "a-1", "causes"), ("a-1", "a-2", "causes")]
    assert g.nodes["a-1"]["type"] == "work"
    chat = toolkit.event_graph(con, "chat")
    assert list(chat.edges(data="kind")) == [("m1", "m2", "follows")]


def test_cycles_from_bad_data_do_not_hang(con, tmp_path):
    load(con, tmp_path, [ce("x", "a", parent="y"), ce("y", "b", parent="x", t=1)])
    g = toolkit.event_graph(con, "t1")
    assert g.number_of_edges() == 2
    assert len(toolkit.critical_path(con, "t1")) == 2
    toolkit.findings(con)


def test_flow_edges_count_share_and_latency(con, tmp_path):
    load(con, tmp_path, _ended("a", []) + chain("b", ["start", "work"], step=3.0))
    df = toolkit.flow_edges(con)
    assert rows(df, "parent", "child", "count", "traces", "share_of_traces") == [
        ("start", "work", 2, 2, 1.0),
        ("work", "done", 1, 1, 0.5),
    ]
    assert df.loc[0, "max_ms"] == 3000.0 and df.loc[0, "p50_ms"] == 2000.0
    g = toolkit.flow_graph(con)
    assert g.nodes["work"]["count"] == 2 and g.edges["start", "work"]["count"] == 2
    by_source = toolkit.flow_edges(con, by="source_type")
    assert by_source.loc[0, "parent"] == "a:start"


def test_latency_measures(con, tmp_path):
    load(
        con,
        tmp_path,
        [ce("a", "call", t=0, end=0.5), ce("b", "reply", src="s", parent="a", t=2, end=2.1)],
    )
    df = toolkit.latency(con).set_index(["measure", "key"])
    assert df.loc[("duration", "call"), "p50_ms"] == 500.0
    assert df.loc[("reaction", "reply"), "max_ms"] == 2000.0
    assert df.loc[("end_to_end", "(unknown)"), "p50_ms"] == 2100.0
    assert set(toolkit.latency(con, by="handler")["key"]) == {"a", "s", "(unknown)"}


def test_critical_path_follows_the_chain_that_ends_last(con, tmp_path):
    load(con, tmp_path, [
        ce("r", "start"), ce("fast", "work", parent="r", t=1), ce("slow", "work", parent="r", t=2),
        ce("end", "done", parent="slow", t=5, end=6),
    ])  # fmt: skip
    df = toolkit.critical_path(con, "t1")
    assert rows(df, "event_id", "contribution_ms") == [
        ("r", 2000.0),
        ("slow", 3000.0),
        ("end", 1000.0),
    ]
    assert df["cumulative_ms"].iloc[-1] == 6000.0


def test_filters_scope_every_analysis(con, tmp_path):
    load(con, tmp_path, [*_requests(4, 3), ce("s", "x", trace="o0", system="shop")])
    assert toolkit.unhandled_events(con, trace_id="o0").empty
    assert len(toolkit.unhandled_events(con, trace_id="o3")) == 0  # o3 alone: 1 event, too few
    assert toolkit.summary(con, system="shop")["traces"].tolist() == [1]
    assert toolkit.findings(con, start="2027-01-01T00:00:00Z").empty

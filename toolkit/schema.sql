-- The canonical schema: the one place the tables are defined (see DESIGN.md).
-- Every statement is safe to run again on an existing database.

-- One row is one event record as the system recorded it. Spans are events with a duration.
CREATE TABLE IF NOT EXISTS events (
    trace_id        VARCHAR NOT NULL,  -- the run / task / conversation
    event_id        VARCHAR NOT NULL,  -- the event's id within its source (repeats = redeliveries)
    parent_id       VARCHAR,           -- causation: the event this one reacts to (never containment)
    type            VARCHAR NOT NULL,
    source          VARCHAR,           -- emitter or handler (agent, service)
    target          VARCHAR,           -- addressee
    ts              TIMESTAMPTZ,       -- when it happened (span start)
    end_ts          TIMESTAMPTZ,       -- span end, for events with a duration
    status          VARCHAR,           -- ok / error / timeout / ... as recorded
    idempotency_key VARCHAR,
    correlation_id  VARCHAR,
    content         VARCHAR,           -- text payload (message, prompt, output)
    attrs           JSON,              -- everything else the format carried
    seq             BIGINT,            -- order in the trace as the source wrote it: the step index for
                                       -- chat logs, else the record's position in its file
    origin          VARCHAR NOT NULL,  -- file:line (or file#item) the record came from
    record_key      VARCHAR NOT NULL,  -- identity of the record, for idempotent ingest
    kind            VARCHAR,           -- span (work with a duration), span_event (a point on a
                                       -- span: an exception, a log), message (a message published
                                       -- for others to consume), event (a record in an event log)
    parent_span_id  VARCHAR,           -- containment: the enclosing span (the caller, the agent run)
    name            VARCHAR            -- the record's own name (span name) when ``type`` comes
                                       -- from an attribute
);
-- Databases written before these columns existed (migrated by ``toolkit.db.connect``).
ALTER TABLE events ADD COLUMN IF NOT EXISTS kind VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS parent_span_id VARCHAR;
ALTER TABLE events ADD COLUMN IF NOT EXISTS name VARCHAR;

CREATE TABLE IF NOT EXISTS traces (
    trace_id VARCHAR PRIMARY KEY,
    system   VARCHAR,                  -- the multi-agent system / framework / service
    task     VARCHAR,                  -- what the run was asked to do
    outcome  VARCHAR,                  -- success / failure / ... when the source says
    attrs    JSON,
    session_id VARCHAR                 -- the run it belongs to (a run may span several traces)
);
ALTER TABLE traces ADD COLUMN IF NOT EXISTS session_id VARCHAR;

CREATE TABLE IF NOT EXISTS annotations (
    trace_id   VARCHAR NOT NULL,
    mode       VARCHAR NOT NULL,       -- FM-1.1 ... FM-3.3, or another label kind (e.g. attribution)
    annotator  VARCHAR NOT NULL,       -- human:<n>, rules, mast-llm, a judge's name
    confidence DOUBLE,
    evidence   JSON,                   -- {"event_ids": [...], "reason": "..."} and more
    origin     VARCHAR,
    record_key VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS rejects (
    origin    VARCHAR NOT NULL,        -- file:line (or file#item)
    reason    VARCHAR NOT NULL,
    record    VARCHAR,                 -- the raw text of the record
    file_hash VARCHAR                  -- the ingest it belongs to
);

CREATE TABLE IF NOT EXISTS ingests (
    file_hash   VARCHAR PRIMARY KEY,   -- sha256 of the file's bytes
    path        VARCHAR NOT NULL,
    format      VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,       -- events added
    rejected    BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    seconds     DOUBLE
);

-- Rows loaded before ``kind`` existed: span formats kept the enclosing span in ``parent_id``.
-- Move it to ``parent_span_id`` (a consumer span keeps it as causation too); everything else is
-- an event-log record. Touches only rows without a kind, so running it again changes nothing.
UPDATE events SET
    kind = CASE WHEN f.span_format IS NOT TRUE THEN 'event'
                WHEN regexp_matches(event_id, ':(event|log|ann):\d+$') THEN 'span_event'
                ELSE 'span' END,
    parent_span_id = CASE WHEN f.span_format IS NOT TRUE THEN NULL
                          ELSE coalesce(attrs->>'$.parent_span_id', parent_id) END,
    parent_id = CASE WHEN f.span_format IS NOT TRUE THEN parent_id
                     WHEN attrs->>'$.parent_span_id' IS NOT NULL THEN parent_id
                     WHEN attrs->>'$."span.kind"' = 'consumer' THEN parent_id END
FROM (SELECT path, format IN ('otlp', 'otel_sdk', 'openinference', 'jaeger', 'zipkin', 'langfuse')
             AS span_format FROM ingests) f
WHERE events.kind IS NULL AND f.path = regexp_replace(events.origin, '[:#][^:#]*$', '');
UPDATE events SET kind = 'event' WHERE kind IS NULL;

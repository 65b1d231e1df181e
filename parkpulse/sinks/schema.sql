-- parkpulse ClickHouse schema: one file for the embedded store (chdb), the server and docker-compose.
-- Every table is a ReplacingMergeTree keyed by what makes a row unique, so a retried or replayed
-- insert can never double count; read with FINAL (or argMax on `version`).
-- `is_deleted = 1` rows are tombstones (a feed's `D`, a withdrawn target, a status row whose
-- month no longer has data); FINAL hides them.

CREATE DATABASE IF NOT EXISTS parkpulse;

CREATE TABLE IF NOT EXISTS parkpulse.zones
(
    id String,
    name_zh String,
    name_en String,
    city String,
    province String
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE TABLE IF NOT EXISTS parkpulse.indicators
(
    id String,
    name_zh String,
    name_en String,
    unit LowCardinality(String),
    kind LowCardinality(String),
    higher_is_better UInt8,
    domain LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE TABLE IF NOT EXISTS parkpulse.observations
(
    zone LowCardinality(String),
    indicator LowCardinality(String),
    basis LowCardinality(String),
    period String,
    source LowCardinality(String),
    value Nullable(Float64),
    unit LowCardinality(String),
    yoy_pct Nullable(Float64),
    obs_status LowCardinality(String),
    revision UInt32,
    action LowCardinality(String),
    published_at String,
    ingested_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (zone, indicator, basis, period, source);

CREATE TABLE IF NOT EXISTS parkpulse.plan_targets
(
    plan LowCardinality(String),
    zone LowCardinality(String),
    indicator LowCardinality(String),
    kind LowCardinality(String),
    base_year UInt16,
    base_value Nullable(Float64),
    target_year UInt16,
    target_value Nullable(Float64),
    annual_growth_pct Nullable(Float64),
    binding UInt8,
    unit LowCardinality(String),
    source String,
    revision UInt32,
    ingested_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (plan, zone, indicator);

CREATE TABLE IF NOT EXISTS parkpulse.indicator_status
(
    zone LowCardinality(String),
    indicator LowCardinality(String),
    plan LowCardinality(String),
    period String,
    kind LowCardinality(String),
    status LowCardinality(String),
    actual Nullable(Float64),
    expected Nullable(Float64),
    annual_target Nullable(Float64),
    attainment Nullable(Float64),
    gap_pp Nullable(Float64),
    projected_year_end Nullable(Float64),
    required_growth_pct Nullable(Float64),
    seasonal_source Nullable(String),
    binding UInt8,
    best_rest_growth_pct Nullable(Float64),
    out_of_reach Nullable(Bool),
    evaluated_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8,
    suspect Nullable(String)  -- last, where the ALTER below adds it to older tables
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (zone, indicator, plan, period);

-- Columns added after a table was first created (a store from an older release gains them).
ALTER TABLE parkpulse.indicator_status
    ADD COLUMN IF NOT EXISTS best_rest_growth_pct Nullable(Float64) AFTER binding,
    ADD COLUMN IF NOT EXISTS out_of_reach Nullable(Bool) AFTER best_rest_growth_pct;

-- Data directories made before the column existed get it here (NULL: not suspect).
ALTER TABLE parkpulse.indicator_status ADD COLUMN IF NOT EXISTS suspect Nullable(String);

-- Figures accepted from the bureau that look implausible (a flow's YTD fell within a year, or a
-- month-on-month jump beyond the configured factor); a revision that makes one plausible again
-- writes a tombstone. See parkpulse/streams/plausibility.py.
CREATE TABLE IF NOT EXISTS parkpulse.suspect_figures
(
    zone LowCardinality(String),
    indicator LowCardinality(String),
    period String,
    reason LowCardinality(String),
    value Float64,
    previous Float64,
    previous_period String,
    flagged_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (zone, indicator, period);

CREATE TABLE IF NOT EXISTS parkpulse.zone_scorecard
(
    zone LowCardinality(String),
    period String,
    achieved UInt32,
    on_track UInt32,
    at_risk UInt32,
    behind UInt32,
    no_data UInt32,
    not_evaluated UInt32,
    worst_binding_indicator Nullable(String),
    worst_binding_attainment Nullable(Float64),
    median_attainment Nullable(Float64),
    evaluated_at DateTime64(3, 'UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY zone;

-- A rejected input is recorded once however often the same bad row is re-sent.
CREATE TABLE IF NOT EXISTS parkpulse.deadletter
(
    received_at DateTime64(3, 'UTC'),
    source_topic LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    raw String,
    origin String,
    line Int64
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY (source_topic, origin, line, reason, cityHash64(raw));

-- One row per newly registered market entity. A re-sent registration (a replayed batch, a
-- retried insert) is the same (zone, registration_id) and collapses to one row. Counts per
-- (zone, month, entity_type) are derived from this table, never kept as running sums.
-- `sent_at` (the producer's stamp) and `ingested_at` (this insert) give the pipeline's latency.
CREATE TABLE IF NOT EXISTS parkpulse.registrations
(
    zone LowCardinality(String),
    registration_id String,
    registered_at DateTime64(3, 'Asia/Shanghai'),
    month LowCardinality(String),
    entity_type LowCardinality(String),
    industry_code LowCardinality(String),
    registered_capital Nullable(Float64),
    batch_id String,
    sent_at Nullable(DateTime64(6, 'UTC')),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY (zone, registration_id);

-- Kept feed files whose every message the worker group has committed past (so ClickHouse holds
-- them): a fresh embedded broker re-publishes only the files not in here. Lost with the data it
-- vouches for, so rebuilding ClickHouse from nothing re-publishes everything.
CREATE TABLE IF NOT EXISTS parkpulse.feed_ledger
(
    file String,
    landed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(landed_at)
ORDER BY file

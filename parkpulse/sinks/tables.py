"""The columns of parkpulse's ClickHouse tables, named once (``schema.sql`` declares them).

Driver-free, so the CLI tables (``scoreboard.py``), the simulator's plan table and the tests can
name a column without loading clickhouse-connect.
"""

from __future__ import annotations

# The status row as stored and as every reader gets it; the JSON API leaves out the columns in
# STATUS_INTERNAL_COLUMNS (scoreboard.STATUS_JSON_KEYS), so their order is the API's order.
STATUS_COLUMNS = (
    "zone",
    "indicator",
    "plan",
    "period",
    "kind",
    "actual",
    "expected",
    "annual_target",
    "attainment",
    "gap_pp",
    "projected_year_end",
    "required_growth_pct",
    "status",
    "binding",
    "best_rest_growth_pct",
    "out_of_reach",
    "suspect",
    "seasonal_source",
)
STATUS_INTERNAL_COLUMNS = ("seasonal_source",)  # explains an expectation; not in the JSON API
SUSPECT_COLUMNS = ("zone", "indicator", "period", "reason", "value", "previous", "previous_period")
OBSERVATION_COLUMNS = (
    "zone",
    "indicator",
    "basis",
    "period",
    "source",
    "value",
    "unit",
    "yoy_pct",
    "obs_status",
    "revision",
    "action",
    "published_at",
)
# A plan table's columns (the targets feed's header); the stored row adds its revision.
TARGET_FIELDS = (
    "plan",
    "zone",
    "indicator",
    "kind",
    "base_year",
    "base_value",
    "target_year",
    "target_value",
    "annual_growth_pct",
    "binding",
    "unit",
    "source",
)
TARGET_COLUMNS = (*TARGET_FIELDS, "revision")
DEADLETTER_COLUMNS = ("received_at", "source_topic", "reason", "detail", "raw", "origin", "line")
REGISTRATION_COLUMNS = (
    "zone",
    "registration_id",
    "registered_at",
    "month",
    "entity_type",
    "industry_code",
    "registered_capital",
    "batch_id",
    "sent_at",
)

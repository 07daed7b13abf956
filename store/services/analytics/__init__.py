"""Pipeline analytics for a caller's scope and period: win rate, deal size, sales cycle,
stage-to-stage conversion, days in stage, stale deals and activity counts per rep.

A period is [start, end], whole days in `tz` (UTC unless given). Deals are in a scope by
their current owner (`pipeline.scoped_deals`), activities by theirs. Amounts stay per
currency. Stage entries and stays come from DealStageStay, one row per entry in DealHistory (a
deal enters a stage with its first history row and with every row that has a from_stage_id),
kept by `stage_stays`. Each result names up to
`cap` deals so an answer can cite them. Counts are aggregated in SQL. Medians need the values:
on PostgreSQL the duration and amount metrics take counts, exact sums and the middle values in
SQL; on SQLite they fetch one narrow row per closed deal or stage stay in the period. Both
give the same figures (see `_exact_days_stats`).

`closed`: win rate, deal size and sales cycle; `stages`: stage conversion and days in stage;
`activity`: stale deals and activity counts; `base`: what they share. Import from here.
"""

from store.services.analytics.activity import RepActivity, StaleDeal, StaleDeals, activity_counts, stale_deals
from store.services.analytics.base import CAP, DaysStats, DealRef
from store.services.analytics.closed import (
    AmountStats,
    DealSizeCycle,
    WinRate,
    WinRateBy,
    WinRateLine,
    deal_size_and_cycle,
    win_rate,
)
from store.services.analytics.stages import ConversionLine, StageTime, days_in_stage, stage_conversion

__all__ = [
    "CAP", "AmountStats", "ConversionLine", "DaysStats", "DealRef", "DealSizeCycle", "RepActivity", "StageTime",
    "StaleDeal", "StaleDeals", "WinRate", "WinRateBy", "WinRateLine", "activity_counts", "days_in_stage",
    "deal_size_and_cycle", "stage_conversion", "stale_deals", "win_rate",
]

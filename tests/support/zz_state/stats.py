"""Zedland's summary and facts, registered with the stats service."""

from services.stats.facts import dated_facts
from services.stats.registry import STATE_STATS, StateStats
from services.stats.state_summaries import dated_combined_summary
from tests.support.zz_state import ZZ

STATE_STATS.register(ZZ.code, StateStats(dated_combined_summary(ZZ.code),
                                         dated_facts("searched")))

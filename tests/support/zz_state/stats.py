"""Zedland's summary and facts, registered with the stats service."""

from services.stats.facts import dated_facts
from services.stats.registry import STATE_STATS, StateStats
from services.stats.state_summaries import COMBINED_CODES, NO_ARRESTS, NOTHING_MORE
from tests.support.zz_state import ZZ

SUMMARY = f"""
CREATE TABLE {{table}} AS
SELECT agency_id, officer_id,
       extract(year FROM date AT TIME ZONE '{{time_zone}}')::smallint AS year,
       extract(month FROM date AT TIME ZONE '{{time_zone}}')::smallint AS month,
       purpose,{COMBINED_CODES}
       searched,{NOTHING_MORE}
       (searched AND contraband) AS contraband,{NO_ARRESTS}
       count(*)::integer AS stops
FROM zz.stop
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
"""

STATE_STATS.register(ZZ.code, StateStats(SUMMARY, dated_facts("searched")))

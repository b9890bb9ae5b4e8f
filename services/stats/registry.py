"""The stats service's per-state parts: how to build each state's summary
table and its landing facts. A state of STATES without an entry here is
named by the registry test; a state package adds its entry with
`STATE_STATS.register(code, StateStats(...))` in its `stats` module.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.stats.facts import Facts, dated_facts, nc_facts, yearly_facts
from services.stats.state_summaries import IL_SUMMARY, MD_SUMMARY, NC_SUMMARY
from shared.states import StateRegistry


@dataclass(frozen=True)
class StateStats:
    # SELECT ... with summaries.SUMMARY_COLUMNS, of the stops `{stops}`
    # (state_summaries.py).
    summary: str
    # facts(conn, state, agencies_table) -> the facts of API.md.
    facts: Facts


STATE_STATS = StateRegistry("summary and facts", {
    "nc": StateStats(NC_SUMMARY, nc_facts),
    "md": StateStats(MD_SUMMARY, dated_facts("searched")),
    "il": StateStats(IL_SUMMARY, yearly_facts("searched = 'Y'")),
})

"""Names from the public API contract (API.md) that more than the gateway
needs: the stats service warms these paths after a refresh."""

# The per-agency aggregates each state serves, under /{state}/api/agency/{id}/
# (API.md's table): the gateway routes them, the stats service warms them.
AGGREGATE_PATHS = {
    "nc": ("stops", "stops_by_reason", "searches", "searches_by_type", "use_of_force",
           "contraband_hit_rate"),
    "md": ("stops", "stops_by_reason", "searches", "contraband_hit_rate"),
    "il": ("stops", "stops_by_reason", "searches", "contraband_hit_rate"),
}


def states_serving(aggregate: str) -> tuple[str, ...]:
    return tuple(state for state, names in AGGREGATE_PATHS.items() if aggregate in names)


def state_paths(state: str, agency_ids) -> list[str]:
    """The facts, the agency list, and each agency's detail and aggregates."""
    paths = [f"/{state}/api/facts/", f"/{state}/api/agency/"]
    for agency_id in agency_ids:
        paths.append(f"/{state}/api/agency/{agency_id}/")
        paths += [f"/{state}/api/agency/{agency_id}/{name}/"
                  for name in AGGREGATE_PATHS[state]]
    return paths

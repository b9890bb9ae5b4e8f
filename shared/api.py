"""Names from the public API contract (API.md) that more than the gateway
needs: the stats service warms these paths after a refresh."""

from shared.states import STATES


def states_serving(aggregate: str) -> tuple[str, ...]:
    """The states with the per-agency aggregate `aggregate` (State.aggregates)."""
    return tuple(code for code, state in STATES.items() if state.serves(aggregate))


def state_paths(state: str, agency_ids) -> list[str]:
    """The facts, the agency list, and each agency's detail and aggregates."""
    paths = [f"/{state}/api/facts/", f"/{state}/api/agency/"]
    for agency_id in agency_ids:
        paths.append(f"/{state}/api/agency/{agency_id}/")
        paths += [f"/{state}/api/agency/{agency_id}/{name}/"
                  for name in STATES[state].aggregates]
    return paths

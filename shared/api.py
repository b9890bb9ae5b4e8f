"""Names from the public API contract (API.md) that more than the gateway
needs: the stats service warms these paths after a refresh."""

from shared.states import STATES


def states_serving(endpoint: str) -> tuple[str, ...]:
    """The states with the per-agency endpoint `endpoint` (State.serves)."""
    return tuple(code for code, state in STATES.items() if state.serves(endpoint))


def state_paths(state: str, agency_ids) -> list[str]:
    """The facts, the agency list, the statewide endpoints, and each agency's
    detail, aggregates and analytics (default parameters)."""
    known = STATES[state]
    paths = [f"/{state}/api/facts/", f"/{state}/api/agency/"]
    paths += [f"/{state}/api/statewide/{name}/" for name in (*known.aggregates, "disparities")]
    for agency_id in agency_ids:
        paths.append(f"/{state}/api/agency/{agency_id}/")
        paths += [f"/{state}/api/agency/{agency_id}/{name}/"
                  for name in (*known.aggregates, *known.analytics)]
    return paths

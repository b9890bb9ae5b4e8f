"""The state registry: every service's per-state parts cover STATES, and a
state without a part is named."""

from __future__ import annotations

import pytest

from services.ingest.formats import RELEASES
from services.stats.registry import STATE_STATS
from shared.api import state_paths, states_serving
from shared.nameko_support import add_state_handlers
from shared.states import STATES, UnknownState

pytestmark = pytest.mark.unit

# Every registry of per-state parts a service keeps (the gateway, admin and
# census have none: they read State alone).
REGISTRIES = (RELEASES, STATE_STATS)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda registry: registry.what)
def test_every_registry_has_every_state(registry):
    assert registry.missing() == [], \
        f"the {registry.what} registry lacks {', '.join(registry.missing())}"


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda registry: registry.what)
def test_a_state_without_a_part_is_named(registry, extra_state):
    assert registry.missing() == [extra_state.code]
    with pytest.raises(UnknownState, match=f"no {registry.what} is registered for the "
                                           f"state '{extra_state.code}'"):
        registry[extra_state.code]


def test_per_state_handlers_are_made_for_every_registered_state(extra_state):
    class Service:
        def follow(self, payload):
            self.seen = payload

    add_state_handlers(Service, "dataset_loaded", Service.follow)
    for code in STATES:
        handler = getattr(Service, f"follow_{code}")
        (entrypoint,) = handler.nameko_entrypoints
        assert (entrypoint.source_service, entrypoint.event_type) == (f"ingest_{code}",
                                                                  "dataset_loaded")
    service = Service()
    getattr(Service, f"follow_{extra_state.code}")(service, {"state": extra_state.code})
    assert service.seen == {"state": extra_state.code}


def test_every_service_hears_every_state():
    from services.admin.service import AdminService
    from services.ingest.service import SERVICES as INGEST
    from services.stats.service import StatsService

    assert [service.name for service in INGEST] == [f"ingest_{code}" for code in STATES]
    for code in STATES:
        assert hasattr(StatsService, f"refresh_{code}")
        for event in ("import_progress", "dataset_loaded", "dataset_failed"):
            assert hasattr(AdminService, f"follow_ingest_{code}_{event}")
    stop_reasons = [service.name for service in INGEST if hasattr(service, "apply_stop_reasons")]
    assert stop_reasons == ["ingest_md"]


def test_routes_and_warmed_paths_follow_what_the_state_says():
    assert states_serving("use_of_force") == ("nc",)
    assert states_serving("stops") == tuple(STATES)
    assert "/il/api/agency/3/searches_by_type/" not in state_paths("il", [3])
    assert "/nc/api/agency/3/searches_by_type/" in state_paths("nc", [3])
    assert [code for code, state in STATES.items() if not state.has_officers] == ["il"]


def test_purpose_groups_cover_each_purpose_once():
    for state in STATES.values():
        grouped = sorted(code for codes in state.purpose_groups.values() for code in codes)
        assert grouped == sorted(state.purposes), state.code

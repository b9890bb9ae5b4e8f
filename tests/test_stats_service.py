"""The stats service on the bus: a load announced by ingest_nc is refreshed
without anyone publishing by hand, even when stats was down at the time."""

from __future__ import annotations

from tests.support.releases import request_import, small_release


def test_a_load_is_refreshed_and_announced(config, release, events, start_service, db):
    start_service("services.ingest")
    start_service("services.stats")
    import_id = request_import(config, release(small_release).as_uri())

    loaded = events.wait_for("dataset_loaded", import_id)
    refreshed = events.wait_for("stats_refreshed", import_id)
    assert refreshed["data_version"] == loaded["data_version"]
    assert db("SELECT generation, data_version FROM stats.generations WHERE state = 'nc'") == [
        (refreshed["generation"], loaded["data_version"])]
    assert db("SELECT sum(stops) FROM stats.nc_stop_summary") == [(4,)]


def test_a_load_while_stats_is_down_is_refreshed_when_it_comes_back(
        config, release, events, start_service, db):
    stats = start_service("services.stats")  # declares its durable queue
    stats.stop()
    start_service("services.ingest")
    import_id = request_import(config, release(small_release).as_uri())
    events.wait_for("dataset_loaded", import_id)
    assert events.of("stats_refreshed", import_id) == []

    again = start_service("services.stats")
    try:
        refreshed = events.wait_for("stats_refreshed", import_id, timeout=30)
    except AssertionError:
        print(again.log())
        raise
    assert db("SELECT generation FROM stats.generations WHERE state = 'nc'") == [
        (refreshed["generation"],)]

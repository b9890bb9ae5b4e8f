"""The stats refresh on the real database: summaries counted exactly, facts,
and a refresh done once per load however often its event arrives."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from odp.facts import format_facts
from services.ingest.pipeline import run_import
from services.stats import summaries
from services.stats.refresh import refresh
from tests.support.releases import ALDER, BIRCHWOOD, PATROL, request, small_release


def load(config, release, write) -> dict:
    outcome = run_import(request(release(write).as_uri()), config)
    assert outcome["event"] == "dataset_loaded", outcome
    return outcome["payload"]


def summary(db, **where) -> dict:
    """stops per (year, race) of the live summary for the agency named."""
    rows = db("SELECT year, race, ethnicity, searched, contraband, sum(stops) AS stops "
              "FROM stats.nc_stop_summary s JOIN nc.agency a ON a.id = s.agency_id "
              "WHERE a.name = :name GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
              name=where["agency"])
    return [tuple(row) for row in rows]


def test_drivers_are_counted_once_per_stop(config, release, engine, db):
    def write(writer):
        writer.stop(1, ALDER, "2015-03-01 08:30:00")
        writer.person(1, 1, "D", race="B", ethnicity="N")
        writer.person(2, 1, "P", race="W", ethnicity="H")
        writer.person(3, 1, "P", race="A", ethnicity="N")
        # two searches and two contraband records: still one stop
        writer.search(1, 1, 1, search_type=1)
        writer.search(2, 1, 2, search_type=3)
        writer.contraband(1, 1, 1, 1, grams="1")
        writer.contraband(2, 2, 2, 1, grams="2")
        writer.stop(2, ALDER, "2015-04-01 08:30:00")
        writer.person(4, 2, "D", race="W", ethnicity="H")

    payload = load(config, release, write)
    assert refresh(engine, "nc", payload["data_version"]) is not None
    assert summary(db, agency=ALDER) == [(2015, "B", "N", True, True, 1),
                                         (2015, "W", "H", False, False, 1)]
    (types,) = db("SELECT search_types FROM stats.nc_stop_summary WHERE searched")[0]
    assert types == (1 << 1) | (1 << 3)


def test_a_combination_split_between_lanes_is_counted_whole(config, release, engine, db):
    # Stops 1 and 1000 fall in different lanes of the summary's build (the
    # id range split in two), yet are the same combination.
    def write(writer):
        for stop_id in (1, 2, 1000):
            writer.stop(stop_id, ALDER, "2015-03-01 08:30:00", officer_id="77")
            writer.person(stop_id, stop_id, "D", race="B", ethnicity="N")

    payload = load(config, release, write)
    assert refresh(engine, "nc", payload["data_version"]) is not None
    assert summary(db, agency=ALDER) == [(2015, "B", "N", False, False, 3)]
    rolled_up = db("SELECT s.stops FROM stats.nc_agency_summary s "
                   "JOIN nc.agency a ON a.id = s.agency_id WHERE a.name = :name", name=ALDER)
    assert [tuple(row) for row in rolled_up] == [(3,)]
    officers = db("SELECT officer_id, stops FROM stats.nc_officer_year_summary")
    assert [tuple(row) for row in officers] == [("77", 3)]


@pytest.mark.parametrize("bounds", [[500], [10, 20, 30], [20, 10, 20], [-5, 0]])
def test_the_lanes_take_every_stop_once(bounds, db):
    conditions = summaries.lane_conditions(bounds)
    ids = [-(1 << 63), -6, -5, 0, 9, 10, 11, 19, 20, 21, 29, 30, 499, 500, (1 << 63) - 1]
    for stop_id in ids:
        matched = [condition for condition in conditions
                   if db(f"SELECT {condition} FROM (SELECT CAST(:id AS bigint) AS stop_id) s",
                         id=stop_id)[0][0]]
        assert len(matched) == 1, (stop_id, matched)
    assert len(conditions) == len(set(bounds)) + 1


def test_the_year_is_the_local_year(config, release, engine, db):
    def write(writer):
        for stop_id, when in ((1, "2015-12-31 20:00:00"), (2, "2015-12-31 23:59:00"),
                              (3, "2016-01-01 00:01:00")):
            writer.stop(stop_id, BIRCHWOOD, when)
            writer.person(stop_id, stop_id)

    payload = load(config, release, write)
    refresh(engine, "nc", payload["data_version"])
    years = db("SELECT year, sum(stops) FROM stats.nc_stop_summary GROUP BY 1 ORDER BY 1")
    assert [tuple(row) for row in years] == [(2015, 2), (2016, 1)]


def test_the_facts_time_frame_is_in_local_days(config, release, engine, db):
    # 23:59 and 21:30 local are the next day in UTC.
    def write(writer):
        for stop_id, when in ((1, "2010-06-30 23:59:00"), (2, "2012-03-04 21:30:00"),
                              (3, "2011-01-01 00:00:00")):
            writer.stop(stop_id, BIRCHWOOD if stop_id == 3 else ALDER, when)
            writer.person(stop_id, stop_id)

    payload = load(config, release, write)
    refresh(engine, "nc", payload["data_version"])
    [(facts,)] = db("SELECT facts FROM stats.facts WHERE state = 'nc'")
    assert (facts["start_date"], facts["end_date"]) == ("Jun 30, 2010", "Mar 04, 2012")
    assert (facts["total_stops"], facts["total_agencies"]) == (3, 2)


def test_facts_follow_the_2002_rule_and_rank_agencies(config, release, engine, db):
    payload = load(config, release, small_release)
    refreshed = refresh(engine, "nc", payload["data_version"])
    [(facts,)] = db("SELECT facts FROM stats.facts WHERE state = 'nc'")
    # The patrol's 2001 stop is kept but the timeframe starts in 2002.
    assert facts["start_date"] == "Jan 01, 2002"
    assert facts["end_date"] == "Jan 01, 2016"
    assert facts["total_stops"] == 4
    assert facts["total_stops_millions"] == 0
    assert facts["total_searches"] == 1
    assert facts["total_agencies"] == 3
    assert [(agency["rank"], agency["name"], agency["stops"])
            for agency in facts["top_agencies"]] == [(1, ALDER, 2), (2, BIRCHWOOD, 1),
                                                     (3, PATROL, 1)]
    assert refreshed["generation"] >= 1
    printed = format_facts(facts)
    assert printed.startswith("Timeframe: Jan 01, 2002 - Jan 01, 2016\nStops: 4\n"
                              "Searches: 1\nAgencies: 3\n\nTop 5:\n")
    assert f"Id {facts['top_agencies'][0]['id']}: {ALDER} 2" in printed


def test_the_same_load_is_refreshed_once_and_older_loads_change_nothing(
        config, release, engine, db):
    first = load(config, release, small_release)
    second = load(config, release, small_release)
    done = refresh(engine, "nc", second["data_version"])
    generation = db("SELECT generation FROM stats.generations WHERE state = 'nc'")[0][0]
    assert done["generation"] == generation
    assert done["data_version"] == second["data_version"]

    assert refresh(engine, "nc", second["data_version"]) is None
    assert refresh(engine, "nc", first["data_version"]) is None
    assert db("SELECT generation FROM stats.generations WHERE state = 'nc'")[0][0] == generation
    events = db("SELECT payload FROM stats.outbox WHERE (payload->>'generation')::int = :g",
                g=generation)
    assert len(events) == 1


@pytest.mark.parametrize("officer", ["A1", "A2"])
def test_officers_are_kept_apart(config, release, engine, db, officer):
    payload = load(config, release, small_release)
    refresh(engine, "nc", payload["data_version"])
    rows = db("SELECT sum(stops) FROM stats.nc_stop_summary WHERE officer_id = :officer",
              officer=officer)
    assert rows == [(1,)]


def test_an_agency_new_to_this_load_is_summarized(config, release, engine, db):
    name = f"Summary Police Department {uuid.uuid4().hex[:6]}"

    def write(writer):
        writer.stop(1, name, "2016-05-05 12:00:00")
        writer.person(1, 1)

    payload = load(config, release, write)
    refresh(engine, "nc", payload["data_version"])
    assert summary(db, agency=name) == [(2016, "W", "N", False, False, 1)]


def test_a_new_mapping_republishes_the_agencies_without_recounting(config, release,
                                                                   engine, db):
    from sqlalchemy import text

    from services.stats.refresh import republish_agencies

    payload = load(config, release, small_release)
    assert refresh(engine, "nc", payload["data_version"]) is not None
    before = db("SELECT generation, data_version FROM stats.generations WHERE state = 'nc'")[0]
    summary_table = db("SELECT 'stats.nc_stop_summary'::regclass::oid")[0][0]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM stats.agency_mappings WHERE state = 'nc'"))
        conn.execute(text("INSERT INTO stats.agency_mappings (state, code, name) "
                          "VALUES ('nc', :code, 'Alder City Police')"), {"code": ALDER})
    try:
        published = republish_agencies(engine, "nc")

        assert published["generation"] == before.generation + 1
        assert published["data_version"] == before.data_version
        names = {row.name for row in db("SELECT name FROM stats.nc_agencies")}
        assert "Alder City Police" in names and ALDER not in names
        top = db("SELECT facts FROM stats.facts WHERE state = 'nc'")[0][0]["top_agencies"]
        assert "Alder City Police" in [agency["name"] for agency in top]
        # The counts were not rebuilt: the summary table is the same table.
        assert db("SELECT 'stats.nc_stop_summary'::regclass::oid")[0][0] == summary_table
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM stats.agency_mappings WHERE state = 'nc'"))


def test_a_load_that_goes_live_during_the_refresh_is_the_one_published(
        config, release, engine, db, monkeypatch):
    """The summaries are built outside the publishing transaction: when an
    import swaps in while they are built, they are built again from it, so
    the published numbers are one whole release."""
    from services.stats import refresh as refreshing

    def stops(count):
        def write(writer):
            for stop_id in range(1, count + 1):
                writer.stop(stop_id, ALDER, "2015-03-01 08:30:00")
                writer.person(stop_id, stop_id, "D", race="B")
        return write

    first = load(config, release, stops(2))
    builds = []
    original = refreshing._build

    def build_then_import(engine_, state, state_stats):
        facts = original(engine_, state, state_stats)
        if not builds:
            builds.append(load(config, release, stops(1)))
        else:
            builds.append("again")
        return facts

    monkeypatch.setattr(refreshing, "_build", build_then_import)
    published = refresh(engine, "nc", first["data_version"])
    second = builds[0]
    assert builds[1:] == ["again"]
    assert published["data_version"] == second["data_version"]
    assert published["import_id"] == second["import_id"]
    # The second release's one stop, not the first's two.
    assert db("SELECT sum(stops) FROM stats.nc_stop_summary")[0][0] == 1
    assert db("SELECT total_stops FROM (SELECT (facts->>'total_stops')::int AS total_stops "
              "FROM stats.facts WHERE state = 'nc') AS f")[0][0] == 1


def test_tables_of_an_older_shape_are_built_again(config, release, engine, db):
    from services.stats.refresh import rebuild_outdated

    payload = load(config, release, small_release)
    refresh(engine, "nc", payload["data_version"])
    (before,) = db("SELECT generation, data_version FROM stats.generations "
                   "WHERE state = 'nc'")
    assert rebuild_outdated(engine) == []  # current: nothing to do
    # As an earlier version left them: a table this code reads is missing.
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE stats.nc_officer_year_summary")
    assert rebuild_outdated(engine) == ["nc"]
    (after,) = db("SELECT generation, data_version FROM stats.generations WHERE state = 'nc'")
    assert after == (before[0] + 1, before[1])
    assert db("SELECT to_regclass('stats.nc_officer_year_summary') IS NOT NULL")[0][0]


def test_the_covered_data_version_comes_from_the_database_not_the_event(
        config, release, engine, db):
    """An event that names a version no import has loaded (the next one, or
    one past bigint) cannot make stats claim it: the next real import of that
    version is refreshed."""
    first = load(config, release, small_release)
    assert refresh(engine, "nc", first["data_version"]) is not None
    generation = db("SELECT generation FROM stats.generations WHERE state = 'nc'")[0][0]
    (next_version,) = db("SELECT last_value + 1 FROM ingest.data_version")[0]

    assert refresh(engine, "nc", next_version) is None
    assert refresh(engine, "nc", 2**63) is None
    assert db("SELECT generation, data_version FROM stats.generations WHERE state = 'nc'")[0] \
        == (generation, first["data_version"])

    second = load(config, release, small_release)
    assert second["data_version"] == next_version
    refreshed = refresh(engine, "nc", second["data_version"])
    assert refreshed is not None
    assert (refreshed["data_version"], refreshed["import_id"]) == (
        second["data_version"], second["import_id"])


def test_a_load_whose_event_was_lost_is_found_behind(config, release, engine):
    """stats' catch-up timer refreshes what `behind` names: a live load newer
    than the published numbers, whatever happened to its event."""
    from services.stats.refresh import behind

    first = load(config, release, small_release)
    refresh(engine, "nc", first["data_version"])
    assert "nc" not in dict(behind(engine))
    second = load(config, release, small_release)
    assert ("nc", second["data_version"]) in behind(engine)
    refresh(engine, "nc", second["data_version"])
    assert "nc" not in dict(behind(engine))


def test_a_catch_up_refresh_does_not_wait_on_one_under_way(config, release, engine):
    """With the state's refresh lock held elsewhere (a refresh under way),
    refresh(wait=False) leaves the work to that one and returns at once."""
    from services.stats.refresh import behind
    from shared.db import advisory_key

    payload = load(config, release, small_release)
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"),
                       {"key": advisory_key("stats:nc")})
        assert refresh(engine, "nc", payload["data_version"], wait=False) is None
        assert ("nc", payload["data_version"]) in behind(engine)
        holder.execute(text("SELECT pg_advisory_unlock(:key)"),
                       {"key": advisory_key("stats:nc")})
    assert refresh(engine, "nc", payload["data_version"], wait=False) is not None

"""A Maryland release through the real services: a two-sheet workbook
requested on the bus, loaded by ingest_md, summarized by stats and read
through the public API with exact counts; a workbook whose second sheet
has other columns fails with a message that says so."""

from __future__ import annotations

import uuid

from services.ingest.md.synthetic import MD_HEADER, stop_row, write_xlsx, zip_release
from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from shared.nameko_support import publisher
from tests.support.waiting import wait_until

ZERO = dict.fromkeys(("asian", "black", "hispanic", "native_american", "non-hispanic",
                      "other", "white"), 0)


def request(config, url: str) -> str:
    import_id = f"md-{uuid.uuid4().hex[:8]}"
    publisher(config)(ADMIN_SOURCE, IMPORT_REQUESTED,
                      {"import_id": import_id, "state": "md", "url": url})
    return import_id


def test_an_md_workbook_is_served_with_exact_counts(config, start_ingest_service,
                                                    start_service, events, client, tmp_path):
    start_ingest_service()
    start_service("services.stats")
    agency, other = f"MD{uuid.uuid4().hex[:5].upper()}", f"MD{uuid.uuid4().hex[:5].upper()}"
    first_sheet = [
        MD_HEADER,
        stop_row(STOPDATE="3/1/2015", TIME_OF_STOP="11:30 PM", STOP_REASON="21-801.1(b)",
                 ETHNICITY="WHITE", GENDER="male", OFFICERID="0412", AGENCY=agency),
        stop_row(STOPDATE="12/31/15", TIME_OF_STOP="23:59", STOP_REASON="22-412.3",
                 ETHNICITY="BLK", SEARCH_CONDUCTED="Yes", SEIZED="Contraband Only",
                 OFFICERID="0412", AGENCY=agency),
        # 2012: before the cut-off, not loaded.
        stop_row(STOPDATE="6/1/2012", ETHNICITY="W.", AGENCY=agency),
    ]
    second_sheet = [
        MD_HEADER,
        stop_row(STOPDATE="1/1/2016", TIME_OF_STOP="12:05 AM", STOP_REASON="21-202(h)",
                 ETHNICITY="HISPANIC", SEARCH_CONDUCTED="Y", SEIZED="Both",
                 OFFICERID="0999", AGENCY=agency),
        # An unmapped statute: Other/Unknown.
        stop_row(STOPDATE="2/2/2016", STOP_REASON="99-999", ETHNICITY="ASIAN",
                 SEARCH_CONDUCTED="N", OFFICERID="0999", AGENCY=agency),
        # Failure to remain at the scene: not loaded.
        stop_row(STOPDATE="2/3/2016", STOP_REASON="20-102", ETHNICITY="BLACK", AGENCY=agency),
        stop_row(STOPDATE="4/4/2016", STOP_REASON="13-401(b)", ETHNICITY="martian",
                 AGENCY=other),
    ]
    workbook = write_xlsx(tmp_path / "md_stops.xlsx", [first_sheet, second_sheet])
    import_id = request(config, zip_release(workbook, tmp_path / "md.zip").as_uri())

    loaded = events.wait_for("dataset_loaded", import_id)
    assert loaded["counts"] == {"stops": 5}
    assert loaded["dropped"] == {"stops before 2013": 1,
                                 "stop reason Failure to remain at scene of accident": 1}
    assert {a["name"] for a in loaded["new_agencies"]} == {agency, other}
    events.wait_for("stats_refreshed", import_id)

    agencies = {a["name"]: a["id"] for a in client.simulate_get("/md/api/agency/").json}
    assert set(agencies) == {agency, other}
    base = f"/md/api/agency/{agencies[agency]}"
    # 23:59 on 31 December 2015 in Maryland is 2015; 00:05 on 1 January is 2016.
    assert client.simulate_get(f"{base}/stops/").json == [
        {"year": 2015, **ZERO, "white": 1, "black": 1, "non-hispanic": 2},
        {"year": 2016, **ZERO, "hispanic": 1, "asian": 1, "non-hispanic": 1},
    ]
    stops = client.simulate_get(f"{base}/stops_by_reason/").json["stops"]
    assert [(r["year"], r["purpose"]) for r in stops] == [
        (2015, "Seat Belt Violation"), (2015, "Speed Limit Violation"),
        (2016, "Stop Light/Sign Violation"), (2016, "Other/Unknown")]
    hits = client.simulate_get(f"{base}/contraband_hit_rate/").json
    assert hits["searches"] == [{"year": 2015, **ZERO, "black": 1, "non-hispanic": 1},
                                {"year": 2016, **ZERO, "hispanic": 1}]
    assert hits["contraband"] == hits["searches"]
    officer = client.simulate_get(f"{base}/stops/", params={"officer": "0999"}).json
    assert officer == [{"year": 2016, **ZERO, "hispanic": 1, "asian": 1, "non-hispanic": 1}]
    missing = client.simulate_get(f"{base}/use_of_force/")
    assert missing.status_code == 404
    assert "no such route" in missing.json["description"]

    facts = client.simulate_get("/md/api/facts/").json
    assert (facts["start_date"], facts["end_date"]) == ("Mar 01, 2015", "Apr 04, 2016")
    assert (facts["total_stops"], facts["total_searches"], facts["total_agencies"]) == (5, 2, 2)


def test_a_second_sheet_with_other_columns_fails_clearly(config, start_ingest_service,
                                                         events, tmp_path):
    start_ingest_service()
    workbook = write_xlsx(tmp_path / "md_broken.xlsx", [
        [MD_HEADER, stop_row()],
        [MD_HEADER[:-1], stop_row()[:-1]],
    ])
    import_id = request(config, zip_release(workbook, tmp_path / "md.zip").as_uri())

    failed = events.wait_for("dataset_failed", import_id)
    assert "has 18 columns where the first sheet has 19" in failed["error"]
    assert "internal error" not in failed["error"]


def test_an_operators_stop_reason_table_applies_to_the_next_import(
        operator, config, start_ingest_service, events, db, tmp_path):
    start_ingest_service()
    path = "/admin/api/stop-reasons/md/"
    shipped = operator.call("GET", path)
    assert shipped.status_code == 200
    assert shipped.text.splitlines()[0] == "stem,purpose"
    assert "21-801,Speed Limit Violation" in shipped.text.splitlines()

    bad = operator.call("PUT", path, body="stem,purpose\n21-801,Speeding\n")
    assert bad.status_code == 400
    assert bad.json["errors"]["body"].startswith("line 2, column 2: purpose 'Speeding'")
    assert operator.call("PUT", "/admin/api/stop-reasons/il/",
                         body="stem,purpose\n").status_code == 404

    table = "stem,purpose\n21-801,Speed Limit Violation\n99-999,Investigation\n"
    replaced = operator.call("PUT", path, body=table)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json == {"state": "md", "stems": 2}
    assert operator.call("GET", path).text == table
    wait_until(lambda: len(db("SELECT stem FROM ingest.md_stop_reasons")) == 2)

    agency = f"MD{uuid.uuid4().hex[:5].upper()}"
    workbook = write_xlsx(tmp_path / "md.xlsx", [[
        MD_HEADER,
        stop_row(STOP_REASON="21-801.1(b)", AGENCY=agency),
        stop_row(STOP_REASON="99-999(a)", AGENCY=agency),
        # No longer in the table: Other/Unknown, no longer Seat Belt Violation.
        stop_row(STOP_REASON="22-412.3", AGENCY=agency),
    ]])
    import_id = request(config, zip_release(workbook, tmp_path / "md.zip").as_uri())
    loaded = events.wait_for("dataset_loaded", import_id)
    assert loaded["counts"] == {"stops": 2}
    assert loaded["dropped"] == {"stop reason Investigation": 1}
    assert sorted(row.purpose for row in db("SELECT purpose FROM md.stop")) == [2, 10]

    # Back to the shipped table for the rest of the session.
    assert operator.call("PUT", path, body=shipped.text).status_code == 200

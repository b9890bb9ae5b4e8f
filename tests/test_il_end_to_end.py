"""An Illinois release through the real services: requested on the bus,
loaded by ingest_il, summarized by stats and read through the public API
with exact counts."""

from __future__ import annotations

import uuid

from services.ingest.il.synthetic import write_csv, zip_release
from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from shared.nameko_support import publisher

CODE_A, CODE_B = f"IL{uuid.uuid4().hex[:5]}", f"IL{uuid.uuid4().hex[:5]}"


def row(code: str, year: int, race: str = "W", search: str = "N", contraband: str = "N",
        purpose: str = "Moving Violation", gender: str = "M") -> dict:
    return {"agencycode": code, "agencyname": "ignored, per the rules", "Gender": gender,
            "Race": race, "Search": search, "Contraband": contraband,
            "StopPurpose": purpose, "year": str(year)}


ROWS = [
    row(CODE_A, 2015, race="W"),
    row(CODE_A, 2015, race="h", search="Y", contraband="Y"),
    row(CODE_A, 2015, race="B", search="Y", purpose="Equipment"),
    row(CODE_A, 2016, race="O", search="", purpose="Registration"),
    row(CODE_A, 2016, race="U", purpose="Parking"),
    row(CODE_B, 2014, race="A", search="y", contraband="n"),
]


def test_an_il_release_is_served_with_exact_counts(config, start_ingest_service,
                                                   start_service, events, client, tmp_path):
    start_ingest_service()
    start_service("services.stats")
    csv_path = write_csv(tmp_path / "il_stops_2016.csv", ROWS)
    url = zip_release(csv_path, tmp_path / "il.zip").as_uri()
    import_id = f"il-{uuid.uuid4().hex[:8]}"
    publisher(config)(ADMIN_SOURCE, IMPORT_REQUESTED,
                      {"import_id": import_id, "state": "il", "url": url})

    loaded = events.wait_for("dataset_loaded", import_id)
    assert loaded["state"] == "il" and loaded["counts"] == {"stops": 6}
    # Unmapped codes keep the code as their name and are reported as new.
    assert {agency["name"] for agency in loaded["new_agencies"]} == {CODE_A, CODE_B}
    refreshed = [event for event in events.of("stats_refreshed") if event["state"] == "il"]
    if not refreshed:
        events.wait_for("stats_refreshed", import_id)

    agencies = {a["name"]: a["id"] for a in client.simulate_get("/il/api/agency/").json}
    assert set(agencies) == {CODE_A, CODE_B}
    base = f"/il/api/agency/{agencies[CODE_A]}"
    zero = dict.fromkeys(("asian", "black", "hispanic", "native_american", "non-hispanic",
                          "other", "white"), 0)
    assert client.simulate_get(f"{base}/stops/").json == [
        {"year": 2015, **zero, "white": 1, "black": 1, "hispanic": 1, "non-hispanic": 2},
        {"year": 2016, **zero, "other": 2, "non-hispanic": 2},
    ]
    by_reason = client.simulate_get(f"{base}/stops_by_reason/").json
    assert [(r["year"], r["purpose"]) for r in by_reason["stops"]] == [
        (2015, "Moving Violation"), (2015, "Equipment"), (2016, "Registration"),
        (2016, "Unknown")]
    assert [(r["year"], r["purpose"]) for r in by_reason["searches"]] == [
        (2015, "Moving Violation"), (2015, "Equipment")]
    hits = client.simulate_get(f"{base}/contraband_hit_rate/").json
    assert hits["searches"] == [{"year": 2015, **zero, "black": 1, "hispanic": 1,
                                 "non-hispanic": 1}]
    assert hits["contraband"] == [{"year": 2015, **zero, "hispanic": 1}]

    officer = client.simulate_get(f"{base}/stops/", params={"officer": "A1"})
    assert officer.status_code == 400
    assert "il has no officer data" in officer.json["description"]
    assert client.simulate_get(f"{base}/use_of_force/").status_code == 404
    assert client.simulate_get(f"{base}/searches_by_type/").status_code == 404

    facts = client.simulate_get("/il/api/facts/").json
    assert (facts["start_date"], facts["end_date"]) == ("2014", "2016")
    assert (facts["total_stops"], facts["total_searches"], facts["total_agencies"]) == (6, 3, 2)
    assert facts["top_agencies"][0] == {"rank": 1, "id": agencies[CODE_A], "name": CODE_A,
                                        "stops": 5}

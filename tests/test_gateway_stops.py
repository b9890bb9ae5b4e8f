"""Find a stop (`/nc/api/stops/`) against a hand-built release: the items,
each filter, newest-first paging without a total, and the date rules."""

from __future__ import annotations

import pytest

from tests.support.gateway import (
    ALDER,
    BIRCHWOOD,
    QUIET,
)


def find(client, **params) -> dict:
    response = client.simulate_get("/nc/api/stops/", params=params)
    assert response.status_code == 200, response.text
    return response.json


def stop_ids(client, **params) -> list[int]:
    return [item["stop_id"] for item in find(client, **params)["results"]]


def test_items_carry_local_times_labels_the_driver_and_whether_searched(client, town):
    page = find(client, agency=town[ALDER])

    assert page["page"] == 1 and page["page_size"] == 25 and page["has_next"] is False
    assert [item["stop_id"] for item in page["results"]] == [6, 5, 4, 3, 2, 1]
    by_id = {item["stop_id"]: item for item in page["results"]}
    assert by_id[3] == {
        "stop_id": 3,
        "date": "2015-12-31T23:59:00-05:00",
        "agency_id": town[ALDER],
        "agency": ALDER,
        "officer_id": "A1",
        "purpose": "Stop Light/Sign Violation",
        "action": "Citation Issued",
        "driver": {"age": 52, "gender": "M", "race": "A", "ethnicity": "N"},
        "searched": True,
    }
    # Summer time in Raleigh is four hours behind UTC.
    assert by_id[6]["date"] == "2016-07-01T09:15:00-04:00"
    assert by_id[6]["driver"] == {"age": 30, "gender": "F", "race": "W", "ethnicity": "H"}
    assert [by_id[i]["searched"] for i in (1, 2, 4, 5)] == [True, False, True, False]
    assert by_id[4]["action"] == "On-View Arrest"


def test_an_officer_id_is_always_a_string(client, town):
    [item] = find(client, agency=town[BIRCHWOOD])["results"]
    assert item["officer_id"] == "1000"


def test_a_stop_without_a_driver_is_listed_with_no_driver(client, town):
    [item] = find(client, agency=town[QUIET])["results"]
    assert item["stop_id"] == 8 and item["driver"] is None
    assert find(client, agency=town[QUIET], race="W")["results"] == []


@pytest.mark.parametrize(("filters", "expected"), [
    ({"officer": "A1"}, [6, 3, 1]),
    ({"officer": "a1"}, [5]),
    ({"race": "W"}, [6, 1]),
    ({"ethnicity": "H"}, [6, 4, 2]),
    ({"gender": "F"}, [6, 4, 2]),
    ({"age": "30"}, [6, 1]),
    ({"purpose": ["1", "10"]}, [6, 5, 4, 1]),
    ({"action": "3"}, [6, 3]),
    ({"action": ["1", "2"]}, [2, 1]),
    ({"race": "W", "ethnicity": "N"}, [1]),
    ({"start_date": "2016-01-01", "end_date": "2016-01-01"}, [4]),
    ({"start_date": "2015-12-31", "end_date": "2015-12-31"}, [3, 2]),
    ({"start_date": "2016-01-01"}, [6, 5, 4]),
    ({"end_date": "2015-12-31"}, [3, 2, 1]),
    ({"officer": ""}, [6, 5, 4, 3, 2, 1]),
])
def test_filters_narrow_the_stops(client, town, filters, expected):
    assert stop_ids(client, agency=town[ALDER], **filters) == expected


def test_passenger_demographics_do_not_match_driver_filters(client, town):
    # Stops 1 and 6 carry a Black passenger; no Alder driver in them is Black.
    assert stop_ids(client, agency=town[ALDER], race="B") == [2]


def test_pages_are_newest_first_and_has_next_says_whether_more_follow(client, town):
    pages = [find(client, agency=town[ALDER], page_size=2, page=page) for page in (1, 2, 3, 4)]

    assert [[item["stop_id"] for item in page["results"]] for page in pages] == [
        [6, 5], [4, 3], [2, 1], []]
    assert [page["has_next"] for page in pages] == [True, True, False, False]
    assert "count" not in pages[0] and pages[1]["page"] == 2 and pages[1]["page_size"] == 2


@pytest.mark.parametrize(("params", "named"), [
    ({"page": "0"}, "page"),
    ({"page": "abc"}, "page"),
    ({"page": ["1", "2"]}, "page"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "101"}, "page_size"),
    ({"start_date": "2015-01-01", "end_date": "2016-01-03"}, "end_date"),
    ({"start_date": "2016-01-02", "end_date": "2016-01-01"}, "end_date"),
    ({"start_date": "2016-02-30"}, "start_date"),
    ({"gender": "X"}, "gender"),
    ({"race": "Z"}, "race"),
    ({"ethnicity": "X"}, "ethnicity"),
    ({"purpose": "11"}, "purpose"),
    ({"action": "x"}, "action"),
    ({"age": "-1"}, "age"),
    ({"officer": "no spaces"}, "officer"),
])
def test_a_bad_parameter_is_a_400_naming_it(client, town, params, named):
    response = client.simulate_get("/nc/api/stops/", params={"agency": town[ALDER], **params})

    assert response.status_code == 400, response.text
    assert response.json["description"].startswith(f"{named}: ")


def test_the_dates_may_be_366_days_apart_and_no_more(client, town):
    assert stop_ids(client, agency=town[ALDER], start_date="2015-01-01",
                    end_date="2016-01-02") == [4, 3, 2, 1]
    response = client.simulate_get("/nc/api/stops/", params={
        "agency": town[ALDER], "start_date": "2015-01-01", "end_date": "2016-01-03"})
    assert response.status_code == 400
    assert "366" in response.json["description"]


def test_the_agency_is_required_and_must_exist(client, town):
    missing = client.simulate_get("/nc/api/stops/")
    unknown = client.simulate_get("/nc/api/stops/", params={"agency": max(town.values()) + 1})

    assert missing.status_code == 400
    assert missing.json["description"].startswith("agency: ")
    assert unknown.status_code == 404


def test_find_a_stop_is_an_nc_route(client, town):
    response = client.simulate_get("/md/api/stops/", params={"agency": 1})
    assert response.status_code == 404

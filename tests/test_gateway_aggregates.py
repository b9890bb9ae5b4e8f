"""The per-agency aggregates against a hand-built release loaded through
the real import and stats refresh: exact counts, the officer filter, and
what an agency without counted stops or an unknown agency gets."""

from __future__ import annotations

import pytest

from tests.support.gateway import (
    ALDER,
    BIRCHWOOD,
    QUIET,
    assert_families_sum_alike,
    row,
)


def get(client, path: str, **params):
    response = client.simulate_get(path, params=params or None)
    assert response.status_code == 200, response.text
    return response.json


def test_stops_count_drivers_once_per_stop_by_race_and_by_ethnicity(client, town):
    stops = get(client, f"/nc/api/agency/{town[ALDER]}/stops/")

    assert stops == [
        row(2015, asian=1, black=1, white=1, hispanic=1, non_hispanic=2),
        row(2016, native_american=1, other=1, white=1, hispanic=2, non_hispanic=1),
    ]
    assert_families_sum_alike(stops)


def test_passengers_are_never_counted(client, town):
    # Stop 1 and stop 6 carry a Black passenger; no Black driver in 2016.
    stops = get(client, f"/nc/api/agency/{town[ALDER]}/stops/")
    assert [counts["black"] for counts in stops] == [1, 0]


def test_the_year_is_taken_in_raleigh(client, town):
    # 20:00 and 23:59 on 31 December 2015 belong to 2015 (UTC says 2016);
    # 00:01 on 1 January 2016 belongs to 2016.
    by_reason = get(client, f"/nc/api/agency/{town[ALDER]}/stops_by_reason/")
    late_december = [counts for counts in by_reason["stops"]
                     if counts["purpose"] == "Stop Light/Sign Violation"]
    assert late_december == [row(2015, purpose="Stop Light/Sign Violation", asian=1,
                                  black=1, hispanic=1, non_hispanic=1)]
    native = [counts["year"] for counts in by_reason["stops"] if counts["native_american"]]
    assert native == [2016]


def test_stops_by_reason_has_rows_by_year_and_purpose_label(client, town):
    by_reason = get(client, f"/nc/api/agency/{town[ALDER]}/stops_by_reason/")

    assert by_reason == {
        "stops": [
            row(2015, purpose="Speed Limit Violation", white=1, non_hispanic=1),
            row(2015, purpose="Stop Light/Sign Violation", asian=1, black=1, hispanic=1,
                non_hispanic=1),
            row(2016, purpose="Speed Limit Violation", native_american=1, white=1,
                hispanic=2),
            row(2016, purpose="Checkpoint", other=1, non_hispanic=1),
        ],
        "searches": [
            row(2015, purpose="Speed Limit Violation", white=1, non_hispanic=1),
            row(2015, purpose="Stop Light/Sign Violation", asian=1, non_hispanic=1),
            row(2016, purpose="Speed Limit Violation", native_american=1, hispanic=1),
        ],
    }
    assert list(by_reason["stops"][0]) == ["year", "purpose", "asian", "black", "hispanic",
                                           "native_american", "non-hispanic", "other",
                                           "white"]


def test_a_stop_with_two_searches_counts_once_in_searches(client, town):
    searches = get(client, f"/nc/api/agency/{town[ALDER]}/searches/")

    assert searches == [
        row(2015, asian=1, white=1, non_hispanic=2),
        row(2016, native_american=1, hispanic=1),
    ]


def test_searches_by_type_count_a_stop_once_under_each_of_its_types(client, town):
    by_type = get(client, f"/nc/api/agency/{town[ALDER]}/searches_by_type/")

    assert by_type == [
        row(2015, search_type="Consent", white=1, non_hispanic=1),
        row(2015, search_type="Probable Cause", asian=1, white=1, non_hispanic=2),
        row(2016, search_type="Protective Frisk", native_american=1, hispanic=1),
    ]


def test_use_of_force_counts_searched_stops_where_force_was_engaged(client, town):
    force = get(client, f"/nc/api/agency/{town[ALDER]}/use_of_force/")

    assert force == [row(2015, asian=1, white=1, non_hispanic=2)]


def test_contraband_counts_a_stop_once_however_many_records_it_has(client, town):
    hit_rate = get(client, f"/nc/api/agency/{town[ALDER]}/contraband_hit_rate/")

    assert hit_rate == {
        "searches": [row(2015, asian=1, white=1, non_hispanic=2),
                     row(2016, native_american=1, hispanic=1)],
        "contraband": [row(2015, white=1, non_hispanic=1),
                       row(2016, native_american=1, hispanic=1)],
    }


def test_every_family_sums_to_its_row_total_on_every_aggregate(client, town):
    base = f"/nc/api/agency/{town[ALDER]}"
    for name in ("stops", "searches", "searches_by_type", "use_of_force"):
        assert_families_sum_alike(get(client, f"{base}/{name}/"))
    for name in ("stops_by_reason", "contraband_hit_rate"):
        for rows in get(client, f"{base}/{name}/").values():
            assert_families_sum_alike(rows)


def test_the_officer_filter_is_exact_and_case_sensitive(client, town):
    stops = f"/nc/api/agency/{town[ALDER]}/stops/"

    assert get(client, stops, officer="A1") == [
        row(2015, asian=1, white=1, non_hispanic=2),
        row(2016, white=1, hispanic=1),
    ]
    assert get(client, stops, officer="a1") == [row(2016, other=1, non_hispanic=1)]
    assert get(client, stops, officer="Z-9_x") == []
    assert get(client, f"/nc/api/agency/{town[ALDER]}/stops_by_reason/",
               officer="A2")["searches"] == [
        row(2016, purpose="Speed Limit Violation", native_american=1, hispanic=1)]


def test_an_empty_officer_counts_as_absent(client, town):
    stops = f"/nc/api/agency/{town[ALDER]}/stops/"
    assert client.simulate_get(stops, query_string="officer=").json == get(client, stops)


@pytest.mark.parametrize("officer", ["A 1", "A1234567890123456", "A1;drop", "Ä1", "A1\n"])
def test_a_bad_officer_is_a_400_naming_officer(client, town, officer):
    response = client.simulate_get(f"/nc/api/agency/{town[ALDER]}/searches/",
                                   params={"officer": officer})

    assert response.status_code == 400
    assert response.json["title"] == "Bad Request"
    assert response.json["description"].startswith("officer: ")
    assert "ETag" not in response.headers


def test_an_agency_without_counted_stops_gets_empty_lists(client, town):
    base = f"/nc/api/agency/{town[QUIET]}"

    assert get(client, f"{base}/stops/") == []
    assert get(client, f"{base}/use_of_force/") == []
    assert get(client, f"{base}/stops_by_reason/") == {"stops": [], "searches": []}
    assert get(client, f"{base}/contraband_hit_rate/") == {"searches": [], "contraband": []}


def test_other_agencies_are_counted_apart(client, town):
    assert get(client, f"/nc/api/agency/{town[BIRCHWOOD]}/stops/") == [
        row(2016, white=1, non_hispanic=1)]


def test_an_unknown_agency_is_a_404(client, town):
    unknown = max(town.values()) + 1000
    for path in (f"/nc/api/agency/{unknown}/", f"/nc/api/agency/{unknown}/stops/",
                 f"/nc/api/agency/{unknown}/contraband_hit_rate/"):
        response = client.simulate_get(path)
        assert response.status_code == 404, path
        assert str(unknown) in response.json["description"]
    assert client.simulate_get("/nc/api/agency/not-a-number/stops/").status_code == 404


def test_the_agency_list_is_sorted_by_name_and_an_agency_has_a_census_profile(
        client, town):
    listed = get(client, "/nc/api/agency/")

    assert [agency["name"] for agency in listed] == [ALDER, BIRCHWOOD, QUIET]
    assert get(client, f"/nc/api/agency/{town[ALDER]}/") == {
        "id": town[ALDER], "name": ALDER, "census_profile": {}}

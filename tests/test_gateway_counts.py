"""Pure logic of the gateway: count rows from summary counts, and query
parameter validation."""

from __future__ import annotations

from datetime import date

import pytest

from services.gateway.counts import count_rows
from services.gateway.errors import BadParameter
from services.gateway.validation import AggregateQuery, FindStopsQuery, load
from shared.states import NC_PURPOSES
from tests.support.gateway import row


def test_a_driver_counts_once_by_race_and_once_by_ethnicity():
    counts = [(2015, None, "W", "H", 3), (2015, None, "B", "N", 2), (2016, None, "U", "N", 1)]

    assert count_rows(counts) == [row(2015, white=3, black=2, hispanic=3, non_hispanic=2),
                                  row(2016, other=1, non_hispanic=1)]


def test_rows_are_ordered_by_year_then_code_and_carry_labels():
    counts = [(2016, 1, "A", "N", 1), (2015, 10, "I", "N", 1), (2015, 2, "W", "N", 4)]

    assert count_rows(counts, "purpose", NC_PURPOSES) == [
        row(2015, purpose="Stop Light/Sign Violation", white=4, non_hispanic=4),
        row(2015, purpose="Checkpoint", native_american=1, non_hispanic=1),
        row(2016, purpose="Speed Limit Violation", asian=1, non_hispanic=1),
    ]


def test_no_counts_no_rows():
    assert count_rows([]) == []


def test_an_empty_officer_is_absent_and_a_good_one_is_kept():
    assert load(AggregateQuery(), {"officer": ""}) == {"officer": None}
    assert load(AggregateQuery(), {"officer": "Ab-9_z"}) == {"officer": "Ab-9_z"}
    assert load(AggregateQuery(), {"other": "x"}) == {"officer": None}


def test_find_a_stop_defaults_and_repeatable_codes():
    loaded = load(FindStopsQuery(), {"agency": "7", "purpose": ["1", "3"], "action": "2",
                                     "start_date": "2016-01-01"})

    assert loaded == {"agency": 7, "officer": None, "purpose": [1, 3], "action": [2],
                      "start_date": date(2016, 1, 1), "page": 1, "page_size": 25}


def test_every_bad_parameter_is_named():
    with pytest.raises(BadParameter) as raised:
        load(FindStopsQuery(), {"agency": "1", "page": "x", "officer": "a b",
                                "gender": ["M", "F"]})

    assert set(raised.value.problems) == {"page", "officer", "gender"}
    assert raised.value.problems["gender"] == "must be given once"

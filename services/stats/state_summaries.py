"""The summary SQL of each state: one SELECT a state, with
summaries.SUMMARY_COLUMNS, built from its live schema. `{time_zone}` is the
state's: the year and month are local. `{stops}` is a condition on
`stop_id` (a range) that the refresh fills in: it builds the summary in
lanes, one range of stops each, on connections of their own (summaries.py);
every table the SELECT reads must take it, so that each lane reads its own
stops and the rows that hang off them, and nothing else.

`month` is NULL where releases carry a year only (il). `contraband_types`
has bit t set when a searched stop found contraband of type t
(shared.states.CONTRABAND_TYPES); `arrested` is the driver's arrest (nc).
"""

# A contraband record's types (API.md, "More aggregates"), as bits.
NC_CONTRABAND_TYPES = """
    (CASE WHEN coalesce(ounces, 0) > 0 OR coalesce(pounds, 0) > 0 OR coalesce(dosages, 0) > 0
               OR coalesce(grams, 0) > 0 OR coalesce(kilos, 0) > 0 THEN 1 ELSE 0 END
     | CASE WHEN coalesce(pints, 0) > 0 OR coalesce(gallons, 0) > 0 THEN 2 ELSE 0 END
     | CASE WHEN coalesce(money, 0) > 0 THEN 4 ELSE 0 END
     | CASE WHEN coalesce(weapons, 0) > 0 THEN 8 ELSE 0 END
     | CASE WHEN coalesce(dollar_amount, 0) > 0 THEN 16 ELSE 0 END)"""

NC_SUMMARY = f"""
WITH drivers AS (
    SELECT DISTINCT ON (stop_id) stop_id, race, ethnicity
    FROM nc.person WHERE type = 'D' AND {{stops}}
    ORDER BY stop_id, person_id
), searches AS (
    SELECT stop_id, bit_or(1 << type)::smallint AS search_types
    FROM nc.search WHERE {{stops}} GROUP BY stop_id
), contraband AS (
    SELECT stop_id, bit_or({NC_CONTRABAND_TYPES})::smallint AS contraband_types
    FROM nc.contraband WHERE {{stops}} GROUP BY stop_id
)
SELECT stop.agency_id,
       stop.officer_id,
       extract(year FROM stop.date AT TIME ZONE '{{time_zone}}')::smallint AS year,
       extract(month FROM stop.date AT TIME ZONE '{{time_zone}}')::smallint AS month,
       stop.purpose,
       drivers.race,
       drivers.ethnicity,
       searches.stop_id IS NOT NULL AS searched,
       coalesce(searches.search_types, 0)::smallint AS search_types,
       (searches.stop_id IS NOT NULL AND coalesce(stop.engage_force, false)) AS engage_force,
       (searches.stop_id IS NOT NULL AND contraband.stop_id IS NOT NULL) AS contraband,
       coalesce(stop.driver_arrest, false) AS arrested,
       (CASE WHEN searches.stop_id IS NOT NULL THEN coalesce(contraband.contraband_types, 0)
             ELSE 0 END)::smallint AS contraband_types,
       count(*)::integer AS stops
FROM nc.stop
JOIN drivers USING (stop_id)
LEFT JOIN searches USING (stop_id)
LEFT JOIN contraband USING (stop_id)
WHERE {{stops}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
"""

# md and il record one combined race/ethnicity code per stop (API.md): a
# Hispanic stop counts as hispanic and in no race; any other code counts in
# its race and as non-Hispanic. Neither state records search types, force,
# arrests or contraband types.
COMBINED_CODES = """
       CASE WHEN race = 'H' THEN NULL ELSE race END AS race,
       CASE WHEN race = 'H' THEN 'H' ELSE 'N' END AS ethnicity,"""
NOTHING_MORE = """
       0::smallint AS search_types,
       false AS engage_force,"""
NO_ARRESTS = """
       false AS arrested,
       0::smallint AS contraband_types,"""

def dated_combined_summary(schema: str) -> str:
    """The summary of a state with one row per stop in `<schema>.stop`: a
    `date`, a combined race code, `searched` and `contraband` booleans and an
    `officer_id` (md; a state package may use it too)."""
    return f"""
SELECT agency_id,
       officer_id,
       extract(year FROM date AT TIME ZONE '{{time_zone}}')::smallint AS year,
       extract(month FROM date AT TIME ZONE '{{time_zone}}')::smallint AS month,
       purpose,{COMBINED_CODES}
       searched,{NOTHING_MORE}
       (searched AND contraband) AS contraband,{NO_ARRESTS}
       count(*)::integer AS stops
FROM {schema}.stop
WHERE {{stops}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
"""


MD_SUMMARY = dated_combined_summary("md")

IL_SUMMARY = f"""
SELECT agency_id,
       NULL::text AS officer_id,
       year,
       NULL::smallint AS month,
       purpose,{COMBINED_CODES}
       searched = 'Y' AS searched,{NOTHING_MORE}
       (searched = 'Y' AND contraband = 'Y') AS contraband,{NO_ARRESTS}
       count(*)::integer AS stops
FROM il.stop
WHERE {{stops}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
"""

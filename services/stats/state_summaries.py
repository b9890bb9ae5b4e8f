"""The summary SQL of each state: one `CREATE TABLE {table} AS` a state,
grouped by summaries.SUMMARY_COLUMNS, built from its live schema.
`{time_zone}` is the state's (the year is local)."""

NC_SUMMARY = """
CREATE TABLE {table} AS
WITH drivers AS (
    SELECT DISTINCT ON (stop_id) stop_id, race, ethnicity
    FROM nc.person WHERE type = 'D'
    ORDER BY stop_id, person_id
), searches AS (
    SELECT stop_id, bit_or(1 << type)::smallint AS search_types
    FROM nc.search GROUP BY stop_id
), contraband AS (
    SELECT DISTINCT stop_id FROM nc.contraband
)
SELECT stop.agency_id,
       stop.officer_id,
       extract(year FROM stop.date AT TIME ZONE '{time_zone}')::smallint AS year,
       stop.purpose,
       drivers.race,
       drivers.ethnicity,
       searches.stop_id IS NOT NULL AS searched,
       coalesce(searches.search_types, 0)::smallint AS search_types,
       (searches.stop_id IS NOT NULL AND coalesce(stop.engage_force, false)) AS engage_force,
       (searches.stop_id IS NOT NULL AND contraband.stop_id IS NOT NULL) AS contraband,
       count(*)::integer AS stops
FROM nc.stop
JOIN drivers USING (stop_id)
LEFT JOIN searches USING (stop_id)
LEFT JOIN contraband USING (stop_id)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""

# md and il record one combined race/ethnicity code per stop (API.md): a
# Hispanic stop counts as hispanic and in no race; any other code counts in
# its race and as non-Hispanic. Neither state records search types or force.
COMBINED_CODES = """
       CASE WHEN race = 'H' THEN NULL ELSE race END AS race,
       CASE WHEN race = 'H' THEN 'H' ELSE 'N' END AS ethnicity,"""

MD_SUMMARY = f"""
CREATE TABLE {{table}} AS
SELECT agency_id,
       officer_id,
       extract(year FROM date AT TIME ZONE '{{time_zone}}')::smallint AS year,
       purpose,{COMBINED_CODES}
       searched,
       0::smallint AS search_types,
       false AS engage_force,
       (searched AND contraband) AS contraband,
       count(*)::integer AS stops
FROM md.stop
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""

IL_SUMMARY = f"""
CREATE TABLE {{table}} AS
SELECT agency_id,
       NULL::text AS officer_id,
       year,
       purpose,{COMBINED_CODES}
       searched = 'Y' AS searched,
       0::smallint AS search_types,
       false AS engage_force,
       (searched = 'Y' AND contraband = 'Y') AS contraband,
       count(*)::integer AS stops
FROM il.stop
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""

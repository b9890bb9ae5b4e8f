"""The census service: American Community Survey 5-year profiles of every
county and place of the three states, fetched from the Census Bureau's data
API (services/census/acs.py) and kept by year and GEO_ID in the `census`
schema (services/census/profiles.py)."""

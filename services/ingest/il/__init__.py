"""Illinois: one CSV of stops (services.ingest.il.release is what the pipeline uses)."""

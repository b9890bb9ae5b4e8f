"""The release format of each state the pipeline can load."""

from services.ingest.nc.release import NcRelease

FORMATS = {"nc": NcRelease()}

"""The release format of each state the pipeline can load."""

from services.ingest.il.release import IlRelease
from services.ingest.md.release import MdRelease
from services.ingest.nc.release import NcRelease

FORMATS = {"nc": NcRelease(), "md": MdRelease(), "il": IlRelease()}

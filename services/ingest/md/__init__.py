"""Maryland: one Excel workbook of stops (see DATA-FORMATS.md, "Maryland (md)")."""

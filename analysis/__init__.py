"""Analysis: preference and rating statistics, dashboards and reports.

`analysis.stats` holds pure functions on pandas DataFrames; it imports no Django, so the
`hafm analyze` command works on exported CSVs anywhere.
"""

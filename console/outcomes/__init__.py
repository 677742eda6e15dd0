"""/outcomes/: whether the business outcome happened, per workflow and over a period.

scope (what is measured: period, buckets, filters), metrics (the SQL: every figure is an
aggregate PostgreSQL computes, never a row that crosses into Python), reasons (which reason
codes recur week after week), charts (trend charts as SVG geometry for a template), views.
"""

"""/workflows/ and /workflows/<slug>/: the catalogue, and one workflow's versions, rules, health.

selectors (what the pages read), views and urls; the what-if, readiness, sample review and
shape drift parts of the workflow page each have their own module.
"""

"""Exception cases, reason codes, triage and approvals (DESIGN.md section 4)."""

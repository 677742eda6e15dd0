"""Four-eyes approvals (DESIGN.md section 6): requests for risky actions, decided by a second
person with the required role, bound to what they approved."""

"""Owners, workflow definitions, events and the processing engine (DESIGN.md sections 1-5)."""

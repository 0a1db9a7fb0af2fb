"""Visits to premises: scheduling, outcomes and findings, the visit policy, and the
officers' calendar feeds."""

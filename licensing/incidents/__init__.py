"""Incidents and ASB reports: the evidence premises are escalated on."""

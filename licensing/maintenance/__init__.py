"""Operational maintenance: backups, restores and the retention of personal data."""

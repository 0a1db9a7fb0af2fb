"""Statutory deadlines of licence reviews, on the England and Wales working-day calendar."""

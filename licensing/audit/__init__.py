"""The tamper-evident audit trail: hash-chained, append-only events."""

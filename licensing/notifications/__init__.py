"""Email alerts: an outbox of rows sent over SMTP, the alerts that fill it, and the
scheduler that runs both (GOV.UK Notify's pattern: persist first, send what is due)."""

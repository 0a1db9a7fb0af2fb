"""The premises register and its escalation workflow."""

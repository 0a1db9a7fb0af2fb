"""People and access: users, roles, sign-in, API tokens and the rules of who sees what."""

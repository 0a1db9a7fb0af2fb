"""The home page: the licensing team's day at a glance, or a council user's bundles."""

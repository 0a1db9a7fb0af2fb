"""Action plans with licence holders and partnership meetings (issue 9)."""

"""Assessment: did interventions work? Before/after figures per premises and for the force."""

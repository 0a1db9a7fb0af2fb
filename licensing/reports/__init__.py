"""The map of premises and the charts of the register and its incidents."""

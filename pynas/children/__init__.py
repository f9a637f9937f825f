"""Child networks: the modules an architecture describes."""

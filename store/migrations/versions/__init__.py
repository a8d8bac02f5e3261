"""Schema revisions, oldest first: 0001 the initial schema, then one file per change."""

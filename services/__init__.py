"""ClassRec services; each runs as `python -m services.<name>`, `python -m services` runs them all."""

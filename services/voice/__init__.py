"""Voice lock: speaker embeddings (d-vectors) of an enrolled lecturer and the scores of live audio."""

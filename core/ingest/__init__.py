"""The ingest pipeline of a run: refresh shared sources, store entries, make stories."""

"""Saved news searches: their query, sources and schedules."""

"""Turning schedules into runs, claiming runs, recording outcomes, sweeping lost work."""

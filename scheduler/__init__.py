"""The scheduler process: a tick loop turning due schedules into enqueued runs, and the sweeper."""

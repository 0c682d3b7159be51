"""What each organization uses (fetches, stories, deliveries, API requests) and the limits
an operator may set on it."""

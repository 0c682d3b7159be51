"""What operators look at across tenants: failing sources and channels, runs, lag."""

"""An organization's stories: filtering, full-text search and streaming export."""

"""Relevance: the boolean search-query language and, later, scoring of stories."""

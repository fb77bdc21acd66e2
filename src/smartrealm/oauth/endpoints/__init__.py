"""OAuth endpoints as ordered lists of small named checks, with no web framework."""

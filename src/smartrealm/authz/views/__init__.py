"""The authorization server's web layer: the Starlette views of its pages and endpoints."""

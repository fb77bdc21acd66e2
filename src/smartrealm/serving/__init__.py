"""Running one component as a service: health and readiness at the root of its listener,
the drain on SIGTERM, and the uvicorn settings of a deployment (listen address, workers,
trusted proxies)."""

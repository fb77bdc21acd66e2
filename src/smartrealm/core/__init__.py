"""The leaf layer: small rules every other layer shares, on the standard library alone.

Nothing here imports another ``smartrealm`` package (import-linter enforces it, see
``.importlinter``): URL normalisation for audience comparison, the FHIR id and resource-type
patterns, HTTP Basic credentials, and the static capability tables of the server profiles."""

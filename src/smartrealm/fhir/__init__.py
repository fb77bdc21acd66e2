"""FHIR R4 resource server: a framework-free core (errors, access, search, handlers), a SQL
repository and a Starlette app (``create_app`` / ``build_resource_server``)."""

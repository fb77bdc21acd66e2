from dataclasses import replace
from datetime import UTC, datetime

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from smartrealm.fhir.http.capability import capability_statement, smart_configuration
from smartrealm.fhir.settings import FhirSettings
from smartrealm.realm.config import ResourceServerConfig, load_config


def test_closed_registration_is_not_advertised_and_empty_profile_serves_all_types() -> None:
    realm = load_config()
    spare = ResourceServerConfig(id="spare", name="Spare",
                                 base_url="http://127.0.0.1:8709/fhir")
    realm = replace(realm, dynamic_registration="closed",
                    resource_servers=(*realm.resource_servers, spare))
    settings = FhirSettings(realm, "spare")
    config = smart_configuration(settings)
    assert "registration_endpoint" not in config
    assert len(config["associated_endpoints"]) == 3
    statement = capability_statement(settings, now=datetime(2025, 1, 2, tzinfo=UTC))
    CapabilityStatement.model_validate(statement)
    assert statement["date"] == "2025-01-02"
    uris = [e["url"] for e in statement["rest"][0]["security"]["extension"][0]["extension"]]
    assert uris == ["authorize", "token", "manage", "introspect", "revoke"]
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"ImagingStudy", "Encounter", "Practitioner"} <= types

from fhir.resources.R4B.bundle import Bundle

from smartrealm.realm.brands import build_brands_bundle
from smartrealm.realm.config import load_config


def test_bundle_validates_as_r4_and_follows_brands_profile() -> None:
    realm = load_config()
    bundle = build_brands_bundle(realm)
    Bundle.model_validate(bundle)  # raises on an invalid R4 resource
    assert bundle["type"] == "collection" and bundle["timestamp"]
    assert bundle["meta"]["lastUpdated"]
    resources = [e["resource"] for e in bundle["entry"]]
    endpoints = [r for r in resources if r["resourceType"] == "Endpoint"]
    orgs = [r for r in resources if r["resourceType"] == "Organization"]
    addresses = sorted(e["address"] for e in endpoints)
    assert addresses == sorted(rs.base_url for rs in realm.resource_servers)
    # one affiliate Organization per server plus the primary brand
    assert len(orgs) == len(realm.resource_servers) + 1


def test_primary_brand_matches_identifier_and_lists_every_endpoint_in_portal() -> None:
    realm = load_config()
    bundle = build_brands_bundle(realm)
    wanted = {"system": realm.brands.identifier_system, "value": realm.brands.identifier_value}
    matches = [e["resource"] for e in bundle["entry"]
               if wanted in e["resource"].get("identifier", [])]
    assert len(matches) == 1  # §1.4: the identifier matches exactly one Organization
    primary = matches[0]
    portal = primary["extension"][0]["extension"]
    portal_refs = [x["valueReference"]["reference"] for x in portal if x["url"] == "portalEndpoint"]
    org_refs = [r["reference"] for r in primary["endpoint"]]
    assert set(portal_refs) <= set(org_refs)  # uab-1
    endpoint_ids = {e["resource"]["id"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Endpoint"}
    assert {r.split("/")[1] for r in portal_refs} == endpoint_ids

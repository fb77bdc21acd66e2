"""The deployment files, checked without docker (not available here): the Dockerfile passes
hadolint; every command the image and the compose file run exists in the CLI with those
options; the compose topology is the one tests/e2e/test_load_balanced.py runs as processes
(the same components, instances, HAProxy backends and ports); HAProxy accepts
deploy/haproxy.cfg; deploy/realm.toml is a valid realm whose trusted proxies are the
compose network."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartrealm.realm.config import parse_config
from tests.e2e.balanced import INSTANCES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CLI = [sys.executable, "-m", "smartrealm.cli"]
LISTEN_PORT = 8080


def _dockerfile_json(instruction: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(rf"^{instruction} (\[.*\])$", text, re.M)
    assert match, instruction
    return list(json.loads(match.group(1)))


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _components(compose: dict[str, Any]) -> dict[str, list[str]]:
    """compose service → its command (the image's CMD replaced)."""
    return {name: list(service["command"]) for name, service in compose["services"].items()
            if "command" in service}


def _serve_options() -> str:
    result = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True,
                            timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_a_real_command_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    entry = _dockerfile_json("ENTRYPOINT")
    assert entry[:2] == ["smartrealm", "serve"]
    help_text = _serve_options()
    options = [a for a in entry + _dockerfile_json("CMD") if a.startswith("--")]
    for option in options:
        assert option in help_text, option
    assert f"0.0.0.0:{LISTEN_PORT}" in entry and f"EXPOSE {LISTEN_PORT}" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "/readyz" in text.split("HEALTHCHECK", 1)[1].split("\n\n")[0]
    assert "[dev]" not in text  # no development dependencies in the image


def test_every_compose_command_exists_in_the_cli() -> None:
    help_text = _serve_options()
    for name, command in _components(_compose()).items():
        for option in (a for a in command if a.startswith("--")):
            assert option in help_text, (name, option)


def test_the_compose_topology_is_the_end_to_end_one() -> None:
    compose = _compose()
    instances: dict[str, int] = {}
    for command in _components(compose).values():
        component = command[command.index("--component") + 1]
        instances[component] = instances.get(component, 0) + 1
    assert instances == INSTANCES
    assert "postgres" in compose["services"] and "haproxy" in compose["services"]
    backends = re.findall(r"^\s+server (\S+) (\S+):(\d+) check", (DEPLOY / "haproxy.cfg")
                          .read_text(), re.M)
    assert sorted(n for n, _, _ in backends) == sorted(
        f"{c}_{i}" for c, n in INSTANCES.items() for i in range(1, n + 1))
    services = set(compose["services"])
    for _name, host, port in backends:
        assert host in services and int(port) == LISTEN_PORT, (host, port)
    binds = sorted(int(p) for p in re.findall(r"^\s+bind \*:(\d+) ", (DEPLOY / "haproxy.cfg")
                                                 .read_text(), re.M))
    published = sorted(int(p.split(":")[0]) for p in compose["services"]["haproxy"]["ports"])
    assert binds == published == [8700, 8701, 8702, 8703]


def test_the_deploy_realm_is_valid_and_points_at_haproxy(tmp_path: Path) -> None:
    data = tomllib.loads((DEPLOY / "realm.toml").read_text())
    data.pop("tls")  # its ca_file lives in the container; everything else must parse here
    realm = parse_config(data, tmp_path)
    urls = [realm.auth_server.issuer, *(rs.base_url for rs in realm.resource_servers)]
    assert sorted(int(u.split(":")[2].split("/")[0]) for u in urls) == [8700, 8701, 8702, 8703]
    assert all(u.startswith("https://realm.example:") for u in urls)
    subnet = _compose()["networks"]["realm"]["ipam"]["config"][0]["subnet"]
    assert [str(n) for n in realm.deployment.trusted_proxies] == [subnet]
    assert realm.database_url.startswith("postgresql+psycopg://")
    assert realm.deployment.drain_seconds > 0


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("HAProxy is not installed (scripts/ensure-system-deps.sh installs it)")
    pem = tmp_path / "realm.pem"
    pem.write_bytes(_self_signed_pem())
    config = (DEPLOY / "haproxy.cfg").read_text().replace(
        "/usr/local/etc/haproxy/certs/realm.pem", str(pem))
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    result = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "realm.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())

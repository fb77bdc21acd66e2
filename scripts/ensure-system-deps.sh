#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: PostgreSQL (a throwaway
# cluster is started by the tests themselves). Uses sudo when not root.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if have_pg; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing PostgreSQL (apt-get) for the storage tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
# Debian starts a default cluster; the tests use their own, so stop it.
$SUDO service postgresql stop >/dev/null 2>&1 || true

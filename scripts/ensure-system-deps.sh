#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: PostgreSQL (a throwaway
# cluster is started by the tests themselves), Chromium (the browser tests drive
# /usr/bin/chromium with Playwright; no browser is ever downloaded) and HAProxy (the
# load-balanced end-to-end test runs its own). With --bench, also wrk
# (the load generator of bench/throughput.py and bench/memory_under_load.py). Uses sudo when
# not root.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_chromium() {
  [ -x /usr/bin/chromium ]
}

have_haproxy() {
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]
}

missing=()
have_pg || missing+=(postgresql)
have_chromium || missing+=(chromium)
have_haproxy || missing+=(haproxy)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing ${missing[*]} (apt-get) for the tests and benchmarks..."
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
  apt-get install -y -qq "${missing[@]}" >/dev/null
if [[ " ${missing[*]} " == *" haproxy "* ]]; then
  # The tests start their own HAProxy with their own configuration.
  $SUDO service haproxy stop >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
  # Debian starts a default cluster; the tests use their own, so stop it.
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

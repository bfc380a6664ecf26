#!/usr/bin/env bash
# Install what the project needs on Debian 12, idempotently (README, CI, Docker image).
set -euo pipefail

PACKAGES=(
  kamailio kamailio-python3-modules kamailio-postgres-modules kamailio-tls-modules
  kamailio-xml-modules rtpengine-daemon nftables
  sip-tester sipsak stunnel4 openssl fail2ban
  postgresql-15 postgresql-client-15
  python3
  python3-psycopg2 python3-cachetools python3-phonenumbers
  python3-pytest python3-hypothesis python3-pytest-benchmark python3-pytest-timeout
  python3-matplotlib
  iproute2 procps make
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Services must not auto-start: the project runs its own private instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

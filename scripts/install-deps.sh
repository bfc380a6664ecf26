#!/usr/bin/env bash
# Install what the project needs on Debian 12, idempotently (README, CI, Docker image).
set -euo pipefail

PACKAGES=(
  kamailio kamailio-python3-modules kamailio-postgres-modules kamailio-tls-modules
  kamailio-xml-modules rtpengine-daemon nftables
  sip-tester sipsak stunnel4 openssl fail2ban prometheus
  postgresql-15 postgresql-client-15
  python3 python3-pip
  python3-psycopg2 python3-cachetools python3-phonenumbers
  python3-pytest python3-hypothesis python3-pytest-benchmark python3-pytest-timeout
  python3-matplotlib python3-prometheus-client
  iproute2 procps make
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

install_debian() {
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
}

[ ${#missing[@]} -eq 0 ] || install_debian

# What only PyPI has, for the Python Kamailio embeds (/usr/bin/python3): into the project's
# .pydeps, which kemi/__init__.py puts on sys.path (PEP 668 forbids a system-wide pip
# install; Debian's python3-pycryptodome is the Cryptodome namespace, which ff3 does not use).
PYDEPS="$(cd "$(dirname "$0")/.." && pwd)/.pydeps"
PYPI=(ff3==1.0.3 pycryptodome==3.23.0)
if ! /usr/bin/python3 -c "import sys; sys.path.insert(0, '$PYDEPS'); import ff3, Crypto.Cipher" 2>/dev/null; then
  echo "install-deps: installing ${PYPI[*]} into $PYDEPS"
  /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --upgrade --target "$PYDEPS" "${PYPI[@]}"
fi

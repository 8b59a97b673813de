#!/usr/bin/env bash
# Installs what dmp-xds needs on a fresh Debian machine: system packages (apt) and the Python venv.
# Usage: scripts/bootstrap.sh [server|test]   (test also installs the test tools and test services)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-server}"

# The `cps` command (CPS card middleware): pcscd and its client library for the readers (libpcsclite-dev and
# gcc build pyscard, an sdist), opensc (pkcs11-tool, pkcs11-spy), the OpenSSL PKCS#11 engine and stunnel4 that
# drive TLS client authentication with the card's non-extractable key (Python's ssl cannot; README).
apt_packages=(pcscd libpcsclite-dev gcc opensc libengine-pkcs11-openssl stunnel4)
if [ "$profile" = test ]; then
  # SoftHSM2 stands in for the card's PKCS#11 module; vsmartcard-vpcd is the virtual reader the tests' own
  # pcscd serves (tests/cardreader), in a network namespace of its own brought up with iproute2.
  apt_packages+=(softhsm2 vsmartcard-vpcd iproute2)
  # PostgreSQL: the tests start a throwaway server (the registry's scale-out database).
  # xmlsec1: the independent XML-DSig implementation the VIHF interop tests sign and verify with.
  # openssl: its s_client shows the TLS alerts a refused handshake sends (tests/e2e/test_security.py).
  apt_packages+=(postgresql xmlsec1 openssl)
  # chromium: the headless browser the patients' portal tests drive through Playwright (executable_path; no
  # browser download).
  apt_packages+=(chromium)
  # strace: `benchmarks/iti41_throughput.py --strace` counts the server's system calls per document.
  apt_packages+=(strace)
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extras=""; [ "$profile" = test ] && extras="[test,bench]"   # bench: the benchmarks' own references (setup.cfg)
.venv/bin/pip install -q --disable-pip-version-check -e ".${extras}" 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored' || true
.venv/bin/python -c "import server, registry, repository, soap_wsdl, cardreader" # fails loudly if the install did not work

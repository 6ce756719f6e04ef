#!/usr/bin/env bash
# Sets up what `npm run supervise` needs on a fresh Debian 12 machine: the demo stack's real
# servers (nats-server, PostgreSQL 15, redis-server) and the npm dependencies. Safe to re-run:
# installed packages are skipped, and npm ci runs only when node_modules is missing or stale.
# Package scripts are kept from starting the system services (the supervisor runs its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(nats-server postgresql redis-server procps)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_created=1
  fi
  apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
  [ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# node-pty (`tty: true` units, `bksup attach`) is built by node-gyp, which would download Node's
# headers: only the package registries may be reachable, so it takes the ones installed with Node.
if [ -z "${npm_config_nodedir:-}" ]; then
  node_prefix="$(node -p 'require("path").resolve(process.execPath, "..", "..")')"
  for d in "$node_prefix" /usr; do
    if [ -f "$d/include/node/node_api.h" ]; then export npm_config_nodedir="$d"; break; fi
  done
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error </dev/null
fi
# npm ci builds it (postinstall); a checkout installed before that script existed gets it here.
node scripts/build-watcher.mjs
echo "setup: ready"

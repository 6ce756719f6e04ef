#!/bin/sh
# pg.sh PROGRAM [ARGS...]  — runs a PostgreSQL program (postgres, initdb, …) of the newest
# installed version, as an unprivileged user when we are root (PostgreSQL refuses to run as root).
# pg.sh --user             — prints "USER UID GID" of the account the programs run as.
#
# Everything is exec'd: the program keeps this shell's pid, so when the supervisor starts
# `sh pg.sh postgres …` the postmaster itself is the supervised process and group leader, and the
# stop signal reaches it directly.
#
# BKLITE_DEMO_PGBIN   directory of the PostgreSQL programs (default: newest /usr/lib/postgresql/*/bin,
#                     else whatever is on PATH)
# BKLITE_DEMO_PG_USER account used when running as root (default: postgres if it exists, else nobody)
set -eu

if [ "$(id -u)" = 0 ]; then
  user=${BKLITE_DEMO_PG_USER:-}
  if [ -z "$user" ]; then
    if id postgres >/dev/null 2>&1; then user=postgres; else user=nobody; fi
  fi
  if ! id "$user" >/dev/null 2>&1; then
    echo "pg.sh: user '$user' does not exist (set BKLITE_DEMO_PG_USER to an unprivileged account)" >&2
    exit 1
  fi
else
  user=$(id -un)
fi

if [ "${1:-}" = "--user" ]; then
  echo "$user $(id -u "$user") $(id -g "$user")"
  exit 0
fi
if [ $# -eq 0 ]; then
  echo "usage: pg.sh PROGRAM [ARGS...] | pg.sh --user" >&2
  exit 2
fi

program=$1
shift
bindir=${BKLITE_DEMO_PGBIN:-}
if [ -z "$bindir" ]; then
  # Newest major version first (sort -V), the Debian/Ubuntu layout.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/$program" ]; then bindir=$d; break; fi
  done
fi
if [ -n "$bindir" ]; then
  path="$bindir/$program"
else
  path=$(command -v "$program" || true)
fi
if [ -z "$path" ] || [ ! -x "$path" ]; then
  echo "pg.sh: PostgreSQL program '$program' not found (install PostgreSQL, e.g. apt-get install postgresql, or set BKLITE_DEMO_PGBIN)" >&2
  exit 127
fi

if [ "$(id -u)" = 0 ]; then
  # --pdeathsig keep: changing credentials clears the parent-death signal the supervisor asked
  # for (so a killed supervisor takes postgres with it); keep restores it.
  exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --pdeathsig keep -- "$path" "$@"
fi
exec "$path" "$@"

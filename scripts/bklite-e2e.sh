#!/usr/bin/env bash
# The flow of test/bklite-e2e.test.ts against a real BK-Lite checkout (the huangpu-dev branch of
# superfm831010/bk-lite, with dev.sh and docker-compose.dev.yml), on a machine that reaches Docker
# Hub, PyPI and npm. Not part of CI. Usage:
#
#   scripts/bklite-e2e.sh /path/to/bk-lite
#
# For the fresh-clone case run it on a new clone (no server/.venv, web/node_modules, server/.env,
# web/.env.local). It never deletes anything of the checkout; it edits web/.env.local for one step
# and puts it back. Steps: `up` until verify passes; `verify` (server and web paths, Chromium when
# installed); `down`, then a second `up` whose installs and db-init are skipped; kill -9 of
# nats_listener is healed; a wrong NEXTAPI_URL makes verify fail naming it; `down` leaves no
# process of the stack (pids and start times recorded from /proc). Exit 0 when every step passed.
set -euo pipefail

checkout="${1:-}"
if [ -z "$checkout" ] || [ ! -f "$checkout/docker-compose.dev.yml" ]; then
  echo "usage: $0 /path/to/bk-lite (a checkout with docker-compose.dev.yml)" >&2
  exit 2
fi
checkout="$(cd "$checkout" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="$here/examples/bklite/supervisor.config.ts"
export BKLITE_ROOT="$checkout" NO_COLOR=1
UP_TIMEOUT="${UP_TIMEOUT:-1800}"
work="$(mktemp -d -t bksup-bklite-e2e.XXXXXX)"
daemon_pid=""
passed=()

bksup() { (cd "$checkout" && node "$here/bin/bksup.js" -c "$config" "$@"); }
step() { printf '\n==== %s ====\n' "$*"; }
ok() { echo "ok: $*"; passed+=("$*"); }
fail() {
  echo "FAILED: $*" >&2
  if [ -f "$work/up.log" ]; then
    echo "--- last lines of up ---" >&2
    tail -n 60 "$work/up.log" >&2
  fi
  exit 1
}
cleanup() {
  local rc=$?
  if [ -f "$work/env.local.orig" ]; then cp "$work/env.local.orig" "$checkout/web/.env.local"; fi
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then bksup down >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# status --json as "name state pid" lines
unit_states() { bksup status --json | node -e 'for (const u of JSON.parse(require("fs").readFileSync(0, "utf8"))) console.log(u.name, u.state, u.pid ?? "-")'; }
state_of() { unit_states | awk -v n="$1" '$1 == n { print $2 }'; }
pid_of() { unit_states | awk -v n="$1" '$1 == n { print $3 }'; }

start_up() {
  : >"$work/up.log"
  (cd "$checkout" && exec node "$here/bin/bksup.js" -c "$config" up) >"$work/up.log" 2>&1 &
  daemon_pid=$!
  local deadline=$((SECONDS + UP_TIMEOUT))
  until grep -q 'verify passed' "$work/up.log"; do
    grep -q 'verify failed' "$work/up.log" && fail "up: verify failed"
    kill -0 "$daemon_pid" 2>/dev/null || fail "up exited before verify passed"
    [ "$SECONDS" -lt "$deadline" ] || fail "up: no 'verify passed' within ${UP_TIMEOUT}s"
    sleep 2
  done
}

# Every process of the daemon's tree and of each unit's session/process group, as "pid starttime".
record_tree() {
  local leaders
  leaders="$daemon_pid $(unit_states | awk '$3 != "-" { print $3 }' | tr '\n' ' ')"
  node -e '
    const fs = require("fs");
    const leaders = new Set(process.argv.slice(1).map(Number));
    const all = [];
    for (const d of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const t = fs.readFileSync(`/proc/${d}/stat`, "latin1");
        const r = t.slice(t.lastIndexOf(")") + 2).split(" ");
        if (r[0] !== "Z") all.push({ pid: +d, ppid: +r[1], pgid: +r[2], sid: +r[3], start: r[19] });
      } catch {}
    }
    const set = new Set(all.filter((p) => leaders.has(p.pid) || leaders.has(p.pgid) || leaders.has(p.sid)).map((p) => p.pid));
    for (let grew = true; grew; ) { grew = false; for (const p of all) if (!set.has(p.pid) && set.has(p.ppid)) { set.add(p.pid); grew = true; } }
    for (const p of all) if (set.has(p.pid)) console.log(p.pid, p.start);
  ' $leaders >>"$work/tree"
}
still_alive() {
  while read -r pid start; do
    [ -r "/proc/$pid/stat" ] || continue
    local now
    now="$(awk '{ sub(/.*\) /, ""); print $1, $20 }' "/proc/$pid/stat" 2>/dev/null || true)"
    [ "$now" = "S $start" ] || [ "$now" = "R $start" ] || [ "$now" = "D $start" ] || [ "$now" = "T $start" ] || continue
    echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done <"$work/tree"
}

step "check: install units, the 13 init commands, the web-path verify"
check_out="$(bksup check 2>&1)" || { echo "$check_out"; fail "bksup check"; }
echo "$check_out"
for want in install-server install-web 'manage.py migrate' 'createcachetable django_cache' init_realm_resource init_login_settings \
  'create_user admin' model_init plugin_init node_init log_init init_bot init_channel init_llm create_builtin_rules \
  /api/proxy/core/api/get_domain_list/ 'headless Chromium'; do
  grep -qF -- "$want" <<<"$check_out" || fail "bksup check does not list: $want"
done
ok "check lists the install units, the 13 init commands and the web-path verify"

step "up (first)"
start_up
ok "up reached verify passed"
bksup verify || fail "verify after the first up"
ok "verify"
record_tree

step "down, then a second up: installs and db-init skipped"
bksup down || fail "down"
wait "$daemon_pid" || true
start_up
for u in install-server install-web db-init; do
  s="$(state_of "$u")"
  [ "$s" = skipped ] || fail "second up: $u is '$s', expected skipped"
done
ok "second up skipped install-server, install-web, db-init"
record_tree

step "kill -9 nats_listener"
old="$(pid_of nats_listener)"
[ "$old" != "-" ] || fail "nats_listener has no pid"
kill -9 "$old"
deadline=$((SECONDS + 180))
until [ "$(state_of nats_listener)" = healthy ] && [ "$(pid_of nats_listener)" != "$old" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "nats_listener not healthy again within 180s"
  sleep 1
done
ok "nats_listener healed after kill -9"
record_tree

step "wrong NEXTAPI_URL makes verify fail naming it"
cp "$checkout/web/.env.local" "$work/env.local.orig"
wrong="http://127.0.0.1:$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')/api/v1"
sed -i "s|^NEXTAPI_URL=.*|NEXTAPI_URL=$wrong|" "$checkout/web/.env.local"
deadline=$((SECONDS + 120))
# next dev reloads .env.local by itself, a moment after the edit: ask verify until it fails.
until ! out="$(bksup verify 2>&1)"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "verify still passes with NEXTAPI_URL=$wrong"
  sleep 3
done
echo "$out" | grep -q NEXTAPI_URL || fail "verify failed without naming NEXTAPI_URL: $out"
cp "$work/env.local.orig" "$checkout/web/.env.local"
rm -f "$work/env.local.orig"
ok "verify failed naming NEXTAPI_URL"

step "down leaves nothing"
record_tree
bksup down || fail "down"
wait "$daemon_pid" || true
daemon_pid=""
left="$(still_alive)"
[ -z "$left" ] || fail "processes left after down:
$left"
ok "down left no process"

printf '\nall passed:\n'
printf '  %s\n' "${passed[@]}"

#!/usr/bin/env bash
# What the tests need on the machine, installed or started if missing: `npm test` runs this
# first (its pretest script), and so does CI (.ci/run, once on its own and again through `npm test`). Each step prints
# what it found or did; a step that cannot be done says which tests will fail and how to fix it,
# and the tests themselves fail with the same reason (they never skip).
#
#   PostgreSQL  answering on 127.0.0.1:5432 (the PostgreSQL store, several masters, failover)
#   PgBouncer   the binary only: tests start PgBouncers of their own (masters behind a pooler)
#   pg_auto_failover  the packages only: tests start clusters of their own (scripts/pg-cluster.sh)
#   Chromium    Debian's, at /usr/bin/chromium or $CHROMIUM (the web console's browser tests)
#
# Packages come from Debian's repositories (apt-get), as root or through `sudo -n`.
# LEDGERMESH_TEST_SETUP=skip skips every step (a machine set up by other means).
set -uo pipefail

log() { printf '[test-setup] %s\n' "$*"; }

if [ "${LEDGERMESH_TEST_SETUP:-}" = "skip" ]; then
  log "LEDGERMESH_TEST_SETUP=skip: not checking PostgreSQL, PgBouncer or Chromium"
  exit 0
fi

# apt-get as root, or through sudo without a password; nothing otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 126
  fi
}

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "no apt-get on this machine: install $* with the system's package manager"
    return 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq || { log "apt-get update failed (not root, and no sudo without a password?)"; return 1; }
    apt_updated=1
  fi
  log "installing $* (apt-get install --no-install-recommends)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

postgres_answers() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && postgres_answers; then
    log "PostgreSQL answers on 127.0.0.1:5432"
    return 0
  fi
  if [ ! -d /etc/postgresql ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "PostgreSQL is not installed"
    apt_install postgresql || { log "could not install PostgreSQL: the PostgreSQL tests will fail"; return 1; }
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version (pg_ctlcluster $version main start)"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    postgres_answers && { log "PostgreSQL answers on 127.0.0.1:5432"; return 0; }
    sleep 1
  done
  log "PostgreSQL does not answer on 127.0.0.1:5432: the PostgreSQL tests will fail (they need trust auth for user postgres, or PGHOST/PGPORT/PGUSER/PGPASSWORD)"
  return 1
}

pgbouncer_path() { command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }; }

# Debian's package starts a system PgBouncer service; the tests want only the binary. A
# policy-rc.d that denies service starts is put in place for the install (when the machine has
# none) and removed after; a service that started anyway is stopped.
ensure_pgbouncer() {
  if [ -n "$(pgbouncer_path)" ]; then
    log "PgBouncer is installed ($("$(pgbouncer_path)" --version 2>/dev/null | head -n 1))"
    return 0
  fi
  log "PgBouncer is missing"
  local policy=/usr/sbin/policy-rc.d placed=0 status
  if [ ! -e "$policy" ] && as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" 2>/dev/null; then
    placed=1
  fi
  apt_install pgbouncer
  status=$?
  [ "$placed" -eq 1 ] && as_root rm -f "$policy"
  if [ -f /etc/init.d/pgbouncer ] && /etc/init.d/pgbouncer status >/dev/null 2>&1; then
    as_root /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
  fi
  if [ "$status" -ne 0 ] || [ -z "$(pgbouncer_path)" ]; then
    log "could not install PgBouncer: the PgBouncer tests will fail (install Debian's pgbouncer, or set PGBOUNCER to its path)"
    return 1
  fi
  log "PgBouncer installed ($("$(pgbouncer_path)" --version 2>/dev/null | head -n 1))"
}

# A highly available PostgreSQL for the tests (scripts/pg-cluster.sh): pg_auto_failover's
# extension for the installed PostgreSQL's version, and its pg_autoctl.
ensure_pg_auto_failover() {
  local version
  version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    log "no PostgreSQL server binaries under /usr/lib/postgresql: the highly available PostgreSQL tests will fail"
    return 1
  fi
  if command -v pg_autoctl >/dev/null 2>&1 && [ -f "/usr/lib/postgresql/$version/lib/pgautofailover.so" ]; then
    log "pg_auto_failover is installed ($(pg_autoctl --version 2>/dev/null | head -n 1))"
    return 0
  fi
  log "pg_auto_failover is missing"
  apt_install "postgresql-$version-auto-failover" pg-auto-failover-cli
  if ! command -v pg_autoctl >/dev/null 2>&1; then
    log "could not install pg_auto_failover: the highly available PostgreSQL tests will fail (install Debian's postgresql-$version-auto-failover and pg-auto-failover-cli)"
    return 1
  fi
  log "pg_auto_failover installed ($(pg_autoctl --version 2>/dev/null | head -n 1))"
}

# The console's browser tests drive Debian's Chromium through playwright-core, which downloads none.
ensure_chromium() {
  local chromium=${CHROMIUM:-/usr/bin/chromium}
  if [ -x "$chromium" ]; then
    log "Chromium is installed ($chromium)"
    return 0
  fi
  log "Chromium is missing at $chromium"
  apt_install chromium
  if [ ! -x "$chromium" ]; then
    log "could not install Chromium: the web console's browser tests will fail (install Debian's chromium, or set CHROMIUM to a Chromium binary)"
    return 1
  fi
  log "Chromium installed ($("$chromium" --version 2>/dev/null | tail -n 1))"
}

status=0
ensure_postgres || status=1
ensure_pgbouncer || status=1
ensure_pg_auto_failover || status=1
ensure_chromium || status=1
# A missing piece fails only the tests that need it (each says why): the rest still run.
[ "$status" -eq 0 ] || log "set-up incomplete: see the lines above"
exit 0

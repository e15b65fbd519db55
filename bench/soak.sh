#!/usr/bin/env bash
# A soak of the gateway: mixed traffic at a fixed rate for a long time, with a short key TTL so that
# the retention purge works under the load, and what a leak or a purge falling behind would show
# sampled as it goes:
#
#   bench/soak.sh [--duration 10m] [--rate 1500] [--connections 128] [--key-ttl 1m] [--every 30s] ...
#
# One gateway (-Xmx256m, its own database idemgate_soak emptied first, its own ports), the bench's
# open-loop generator (latencies from the intended send time), one row per sample: keys retained and
# expired but not yet purged in PostgreSQL, the purge's lag, the gateway's RSS, old generation,
# threads and file descriptors, Redis's memory, WARN and ERROR lines logged. Printed, and written to
# bench/results/soak-<timestamp>.md. PostgreSQL and Redis must be running; nothing else is touched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/bench/lib.sh"

DURATION=10m
# Unrecorded load first, so that the JIT of the gateway and the generator is not in the latencies.
WARMUP=30s
RATE=1500
# Open loop over HTTP/1.1: each connection carries one request at a time, so the rate needs
# rate x latency connections and some room; with too few the generator's own queue is measured.
CONNECTIONS=128
KEY_TTL=1m
EVERY=30s
HTTP_PORT=18081
MANAGEMENT_PORT=19091
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PG_DB=idemgate_soak
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
BUILD=0

usage() {
  cat <<EOF
usage: bench/soak.sh [options]
  --duration D       how long the recorded load runs (30s, 10m, 1h; default $DURATION)
  --warmup D         the same load first, sampled but not in the latencies (default $WARMUP)
  --rate N           new requests per second: 1 % retries of recent keys, 5 % declines (default $RATE)
  --connections N    HTTP/1.1 connections of the generator (default $CONNECTIONS)
  --key-ttl D        the gateway's key_ttl: keys expire and are purged within the run (default $KEY_TTL)
  --every D          time between samples (default $EVERY)
  --http-port P / --management-port P   (defaults $HTTP_PORT / $MANAGEMENT_PORT)
  --pg-db NAME       database of the soak's gateway; created if missing, emptied first (default $PG_DB)
  --pg-port P / --redis-port P   where PostgreSQL and Redis listen on 127.0.0.1 (defaults $PG_PORT / $REDIS_PORT)
  --build            rebuild the gateway jar and the load generator even if present
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --key-ttl) KEY_TTL="$2"; shift 2 ;;
    --every) EVERY="$2"; shift 2 ;;
    --http-port) HTTP_PORT="$2"; shift 2 ;;
    --management-port) MANAGEMENT_PORT="$2"; shift 2 ;;
    --pg-db) PG_DB="$2"; shift 2 ;;
    --pg-port) PG_PORT="$2"; shift 2 ;;
    --redis-port) REDIS_PORT="$2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

DURATION_S="$(seconds_of "$DURATION")"
EVERY_S="$(seconds_of "$EVERY")"
WARMUP_S="$(seconds_of "$WARMUP")"
[[ "$DURATION_S" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --duration $DURATION" >&2; exit 2; }
[[ "$EVERY_S" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --every $EVERY" >&2; exit 2; }
[[ "$WARMUP_S" =~ ^[0-9]+$ ]] || { echo "soak: bad --warmup $WARMUP" >&2; exit 2; }
[[ "$RATE" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --rate $RATE" >&2; exit 2; }
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --connections $CONNECTIONS" >&2; exit 2; }
[[ "$KEY_TTL" =~ ^[1-9][0-9]*[smh]$ ]] || { echo "soak: bad --key-ttl $KEY_TTL (say 1m)" >&2; exit 2; }

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$ROOT/bench/results/soak-$STAMP.md"
RAW="$ROOT/bench/results/soak-$STAMP-raw"
GATEWAY_JAR="$ROOT/target/idemgate.jar"
LOADGEN_JAR="$ROOT/bench/loadgen/target/loadgen.jar"
API_KEY=sk_test_demo
GATEWAY_PID=""
LOADGEN_PID=""

die() { printf 'soak: %s\n' "$*" >&2; exit 1; }
cleanup() {
  stop_pid "$LOADGEN_PID"
  stop_pid "$GATEWAY_PID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_soak() { PGOPTIONS='-c client_min_messages=warning' psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -v ON_ERROR_STOP=1 -Atq "$@"; }
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 \
  || die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT as $PG_USER: start it first"
[[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] \
  || die "Redis is not reachable at $REDIS_HOST:$REDIS_PORT: start it first"
if [[ $BUILD == 1 || ! -f "$GATEWAY_JAR" ]]; then
  mvn -B -q -f "$ROOT/pom.xml" package -DskipTests || die "the gateway build failed"
fi
if [[ $BUILD == 1 || ! -f "$LOADGEN_JAR" ]]; then
  mvn -B -q -f "$ROOT/bench/loadgen/pom.xml" package -DskipTests || die "the load generator build failed"
fi
mkdir -p "$RAW"

ensure_database
if [[ "$(psql_soak -c "SELECT to_regclass('idemgate.idempotency_keys') IS NOT NULL")" == t ]]; then
  psql_soak -c "TRUNCATE idemgate.idempotency_keys, idemgate.payments"
fi

env IDEMGATE_HTTP_PORT="$HTTP_PORT" IDEMGATE_MANAGEMENT_PORT="$MANAGEMENT_PORT" \
  IDEMGATE_PG_URL="postgresql://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB" \
  IDEMGATE_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT" \
  IDEMGATE_API_KEYS="demo=$API_KEY" IDEMGATE_KEY_TTL="$KEY_TTL" \
  java -Xmx256m -jar "$GATEWAY_JAR" > "$RAW/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_until_ready "$GATEWAY_PID" "$RAW/gateway.log" soak || die "$NOT_READY"

java "${LOADGEN_JVM_OPTIONS[@]}" -jar "$LOADGEN_JAR" open \
  --url "http://127.0.0.1:$HTTP_PORT" --api-key "$API_KEY" --mode mixed --decline-percent 5 \
  --rate "$RATE" --connections "$CONNECTIONS" --duration "${DURATION_S}s" --warmup "${WARMUP_S}s" \
  --scenario soak --results "$RAW/results.jsonl" > "$RAW/loadgen.log" 2>&1 &
LOADGEN_PID=$!

meter() { # name -> its value on the gateway's /metrics, or n/a
  curl -fsS --max-time 5 "http://127.0.0.1:$MANAGEMENT_PORT/metrics" 2>/dev/null | awk -v m="$1" '$1 == m {print $2; found=1} END {if (!found) print "n/a"}'
}
sample() { # elapsed seconds -> one table row
  local keys expired lag purged rss old threads fds redis warnings
  keys="$(psql_soak -c "SELECT count(*) FROM idemgate.idempotency_keys")"
  expired="$(psql_soak -c "SELECT count(*) FROM idemgate.idempotency_keys WHERE state = 'COMPLETED' AND expires_at < now()")"
  lag="$(meter idemgate_retention_lag_seconds)"
  purged="$(meter idemgate_retention_purged_total)"
  rss="$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$GATEWAY_PID/status")"
  old="$(jstat -gc "$GATEWAY_PID" 2>/dev/null | awk 'NR == 2 {printf "%.0f", $8 / 1024}')"
  threads="$(ls "/proc/$GATEWAY_PID/task" | wc -l)"
  fds="$(ls "/proc/$GATEWAY_PID/fd" | wc -l)"
  redis="$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {printf "%.0f", $2 / 1048576}')"
  warnings="$(warnings_by_logger "$RAW/gateway.log" | awk '{ n += $1 } END { print n + 0 }')"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$1" "$keys" "$expired" "$lag" "${purged%.0}" "$rss" "${old:-n/a}" "$threads" "$fds" "$redis" "$warnings"
}

{
  echo "# Idemgate soak $STAMP"
  echo
  echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- load: $RATE requests/s for $WARMUP of warm-up, then $DURATION recorded, over $CONNECTIONS HTTP/1.1 connections, open loop, mixed (1 % retries of recent keys, 5 % declines)"
  echo "- gateway: -Xmx256m, key_ttl $KEY_TTL, the rest defaults; database $PG_DB, Redis $REDIS_HOST:$REDIS_PORT (shared; Redis memory is the whole server's)"
  echo "- PostgreSQL: $(psql_soak -c "SELECT current_setting('server_version') || ', autovacuum ' || current_setting('autovacuum')")"
  echo "- cpus: $(nproc)"
  echo
  echo "Samples from the start of the warm-up:"
  echo
  echo "| s | keys retained | expired, not purged | purge lag s | purged | RSS MB | old gen MB | threads | fds | Redis MB | WARN/ERROR lines |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT"

START=$SECONDS
while kill -0 "$LOADGEN_PID" 2>/dev/null; do
  sleep "$EVERY_S" &
  wait $! || true
  kill -0 "$LOADGEN_PID" 2>/dev/null || break
  sample $((SECONDS - START)) | tee -a "$OUT"
done
wait "$LOADGEN_PID" || die "the load generator failed, see $RAW/loadgen.log"
LOADGEN_PID=""
sample $((SECONDS - START)) | tee -a "$OUT"

{
  echo
  echo "Load generator (latencies from the intended send time):"
  echo
  echo '```'
  cat "$RAW/results.jsonl"
  echo '```'
  echo
  echo "Gateway WARN and ERROR lines by logger:"
  warnings_by_logger "$RAW/gateway.log" | sed 's/^/    /'
} | tee -a "$OUT"
echo "soak: written to $OUT" >&2

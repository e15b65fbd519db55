#!/usr/bin/env bash
# The Idemgate benchmark kit (issue 4), one command:
#
#   bench/run.sh [--duration 10s] [--rate 300] [--connections 32] [--build] ...   (--help for all)
#
# Builds what is missing, installs missing Debian tools (wrk, h2load), starts the gateway
# (-Xmx256m, its own database idemgate_bench, its own ports) and, for the provider-latency
# scenario, the standalone acquirer it then calls over HTTP, runs every scenario and baseline,
# and prints one table, also written to bench/results/<timestamp>.md and .json. Raw tool outputs
# stay in bench/results/<timestamp>-raw/. Every step is bounded in time; the gateway, the bare
# endpoint and the acquirer are stopped on exit whatever happens. A step that fails is listed in
# the fact failed_steps (the report then says INCOMPLETE) and makes the exit status 1, after the
# report; so is a gateway or acquirer that does not start or exits, and every step that needed it
# is skipped, each a failed step. A run that stops early (the main gateway did not start, a fatal
# error, Ctrl-C) still writes its report, with the failed step run-stopped. Postgres and Redis must
# already be running: the bench never starts, stops or flushes them, and writes only to its own
# database and keys.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/bench/lib.sh"

DURATION=10s
WARMUP=10s
GATEWAY_WARMUP=30s
JIT_SETTLE_MAX=180s
RATE=auto
RATE_FRACTION=30
# The Java open-loop generator runs on one event loop: on 2 cores beside the gateway it fell behind
# at 19,000 replays/s (send lag p99 93 ms, run 20261128T125011Z), so an auto rate stops here.
RATE_MAX=12000
CONNECTIONS=32
STORM_CONCURRENCY=1000
STORM_ROUNDS=3
# Payments per statement of the grouped pgbench run of the gateway's own SQL (pg-gateway-sql-grouped):
# twice what the gateway forms from 32 connections, so a generous ceiling.
SQL_GROUP=16
# Connection counts of the extra fresh-key runs on the main gateway, and client counts of the extra
# naive-SQL runs (each besides --connections): the gateway's throughput grows with concurrency
# (bigger groups), the naive SQL's falls past a few dozen clients (one backend per request).
SWEEP_CONNECTIONS="64 128 256"
SWEEP_CLIENTS="8 16 64"
REPLAY_KEYS=1000
LATENCY_MS=50
HTTP_PORT=18080
MANAGEMENT_PORT=19090
BARE_PORT=18099
ACQUIRER_PORT=18098
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PG_DB=idemgate_bench
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
BUILD=0
INSTALL=1

usage() {
  cat <<EOF
usage: bench/run.sh [options]
  --duration D           measured time of each scenario (10s, 1m; default $DURATION)
  --warmup D             unmeasured warm-up before each open-loop run and each replay run (default $WARMUP)
  --gateway-warmup D     unmeasured fresh payments after each gateway start (default $GATEWAY_WARMUP):
                         the JIT needs it; after 10 s on 2 cores its compiler thread still used
                         half of the gateway's CPU, after 30-40 s under a tenth
  --jit-settle-max D     after that warm-up, fresh payments go on in 10 s steps while the JIT
                         compiled for over a tenth of the last stretch, at most this long
                         (default $JIT_SETTLE_MAX; 0s: the fixed warm-up alone)
  --rate N|auto          open-loop rate, requests/s; auto = --rate-percent of the closed-loop
                         throughput wrk just measured for the same scenario (default $RATE)
  --rate-percent P       for --rate auto (default $RATE_FRACTION)
  --rate-max N           for --rate auto, at most this many requests/s (default $RATE_MAX)
  --connections N        HTTP connections of wrk / the load generator, and pgbench clients (default $CONNECTIONS)
  --storm-concurrency N  requests per storm round, all on one key (default $STORM_CONCURRENCY)
  --storm-rounds N       storm rounds, one key each (default $STORM_ROUNDS)
  --sql-group N          payments per statement of the grouped pgbench run of the gateway's SQL (default $SQL_GROUP)
  --sweep-connections "N ..."  extra fresh-key wrk runs at these connection counts (default "$SWEEP_CONNECTIONS"; "" for none)
  --sweep-clients "N ..."      extra naive-SQL pgbench runs at these client counts (default "$SWEEP_CLIENTS"; "" for none);
                         counts above the server's max_connections less 5 are skipped and said so
  --replay-keys N        completed keys the replay scenarios cycle through (default $REPLAY_KEYS)
  --latency-ms N         latency of every charge in the provider-latency scenario, where the gateway
                         calls the standalone acquirer over HTTP (default $LATENCY_MS)
  --http-port P / --management-port P / --bare-port P / --acquirer-port P
                         (defaults $HTTP_PORT / $MANAGEMENT_PORT / $BARE_PORT / $ACQUIRER_PORT)
  --pg-db NAME           database the bench gateway and pgbench use; created if missing (default $PG_DB)
  --pg-port P / --redis-port P   where PostgreSQL and Redis listen on 127.0.0.1 (defaults $PG_PORT / $REDIS_PORT)
  --build                rebuild the gateway jar and the load generator even if present
  --no-install           never apt-get install missing tools; fail instead
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --gateway-warmup) GATEWAY_WARMUP="$2"; shift 2 ;;
    --jit-settle-max) JIT_SETTLE_MAX="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --rate-percent) RATE_FRACTION="$2"; shift 2 ;;
    --rate-max) RATE_MAX="$2"; shift 2 ;;
    --sql-group) SQL_GROUP="$2"; shift 2 ;;
    --sweep-connections) SWEEP_CONNECTIONS="$2"; shift 2 ;;
    --sweep-clients) SWEEP_CLIENTS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --storm-concurrency) STORM_CONCURRENCY="$2"; shift 2 ;;
    --storm-rounds) STORM_ROUNDS="$2"; shift 2 ;;
    --replay-keys) REPLAY_KEYS="$2"; shift 2 ;;
    --latency-ms) LATENCY_MS="$2"; shift 2 ;;
    --http-port) HTTP_PORT="$2"; shift 2 ;;
    --management-port) MANAGEMENT_PORT="$2"; shift 2 ;;
    --bare-port) BARE_PORT="$2"; shift 2 ;;
    --acquirer-port) ACQUIRER_PORT="$2"; shift 2 ;;
    --pg-db) PG_DB="$2"; shift 2 ;;
    --pg-port) PG_PORT="$2"; shift 2 ;;
    --redis-port) REDIS_PORT="$2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

DURATION_S="$(seconds_of "$DURATION")"
WARMUP_S="$(seconds_of "$WARMUP")"
GATEWAY_WARMUP_S="$(seconds_of "$GATEWAY_WARMUP")"
JIT_SETTLE_MAX_S="$(seconds_of "$JIT_SETTLE_MAX")"
for n in $SWEEP_CONNECTIONS $SWEEP_CLIENTS; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --sweep-connections and --sweep-clients take positive numbers, not '$n'" >&2; exit 2; }
done
[[ "$DURATION_S" =~ ^[0-9]+$ && "$DURATION_S" -ge 1 ]] || { echo "bench: bad --duration $DURATION" >&2; exit 2; }
[[ "$WARMUP_S" =~ ^[0-9]+$ ]] || { echo "bench: bad --warmup $WARMUP" >&2; exit 2; }
[[ "$GATEWAY_WARMUP_S" =~ ^[0-9]+$ ]] || { echo "bench: bad --gateway-warmup $GATEWAY_WARMUP" >&2; exit 2; }
[[ "$JIT_SETTLE_MAX_S" =~ ^[0-9]+$ ]] || { echo "bench: bad --jit-settle-max $JIT_SETTLE_MAX" >&2; exit 2; }
[[ "$RATE" == auto || "$RATE" =~ ^[0-9]+$ ]] || { echo "bench: bad --rate $RATE (a number or auto)" >&2; exit 2; }
[[ "$RATE_MAX" =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad --rate-max $RATE_MAX" >&2; exit 2; }
[[ "$SQL_GROUP" =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad --sql-group $SQL_GROUP" >&2; exit 2; }
[[ "$LATENCY_MS" =~ ^[0-9]+$ ]] || { echo "bench: bad --latency-ms $LATENCY_MS" >&2; exit 2; }
for port in "$HTTP_PORT" "$MANAGEMENT_PORT" "$BARE_PORT" "$ACQUIRER_PORT"; do
  [[ "$port" =~ ^[1-9][0-9]*$ && "$port" -le 65535 ]] || { echo "bench: bad port $port" >&2; exit 2; }
done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS_DIR="$ROOT/bench/results"
RAW="$RESULTS_DIR/$STAMP-raw"
RESULTS="$RAW/results.jsonl"
META="$RAW/meta.properties"
GATEWAY_JAR="$ROOT/target/idemgate.jar"
LOADGEN_JAR="$ROOT/bench/loadgen/target/loadgen.jar"
WRK_SCRIPT="$ROOT/bench/wrk/pay.lua"
API_KEY=sk_test_demo
ADMIN_TOKEN="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
GATEWAY_PID=""
BARE_PID=""
ACQUIRER_PID=""
# Steps that failed or were skipped for want of an input: their rows are missing or unusable. Written
# as the fact failed_steps (the report then says the run is INCOMPLETE), and run.sh exits 1 at the end.
FAILED_STEPS=()
# Set once the results directory exists and until the report is written: an exit in between writes
# the report from the exit trap, with the step run-stopped and the fact run_stopped saying why.
REPORT_DUE=0
STOPPED_BY=""
ERROR_LINE=""

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; STOPPED_BY="$*"; exit 1; }
fact() { printf '%s=%s\n' "$1" "$2" >> "$META"; }
step_failed() { # step message: counts the step as failed, says why on stderr, and goes on
  FAILED_STEPS+=("$1")
  printf 'bench: FAILED %s: %s\n' "$1" "$2" >&2
}

cleanup() {
  local status=$?
  stop_pid "$GATEWAY_PID"
  stop_pid "$BARE_PID"
  stop_pid "$ACQUIRER_PID"
  [[ $REPORT_DUE == 1 ]] || return 0
  if [[ -z $STOPPED_BY ]]; then
    if (( status == 130 )); then STOPPED_BY="interrupted (SIGINT or SIGTERM)"
    else STOPPED_BY="a command failed unexpectedly at bench/run.sh line ${ERROR_LINE:-unknown} (exit status $status)"; fi
  fi
  step_failed run-stopped "$STOPPED_BY; no later step ran"
  fact run_stopped "$STOPPED_BY; no later step ran"
  write_report || echo "bench: the report could not be written either" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Where set -e stopped the run, for run_stopped (errtrace: also inside functions).
trap 'ERROR_LINE=$LINENO' ERR

# ---------------------------------------------------------------------------------------------
# Preflight: dependencies up, tools present, jars built.

say "preflight"
command -v java >/dev/null || die "java is not installed (Java 17 is needed)"
command -v psql >/dev/null || die "psql is not installed (apt-get install postgresql-client)"
command -v redis-cli >/dev/null || { [[ $INSTALL == 1 ]] && apt-get install -y -q redis-tools >/dev/null; } || die "redis-cli missing"
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 \
  || die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT as $PG_USER: start it first (the bench never starts or stops it)"
[[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] \
  || die "Redis is not reachable at $REDIS_HOST:$REDIS_PORT: start it first (the bench never starts or stops it)"

need_tool() { # command debian-package
  command -v "$1" >/dev/null && return 0
  [[ $INSTALL == 1 ]] || die "$1 is missing: apt-get install -y $2 (or drop --no-install)"
  echo "installing $2 for $1" >&2
  { apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null 2>&1; }; } \
    || die "could not apt-get install $2 (needed for $1)"
}
need_tool wrk wrk
need_tool h2load nghttp2-client
need_tool redis-benchmark redis-tools
command -v pgbench >/dev/null || die "pgbench is missing: it ships with the PostgreSQL server package (apt-get install postgresql-15)"
command -v jcmd >/dev/null || echo "bench: jcmd not found (a JRE, not a JDK?); heap figures will be n/a" >&2

stale() { # jar sources... -> true when the jar is missing or older than any of the sources
  local jar="$1"; shift
  [[ ! -f "$jar" ]] || [[ -n "$(find "$@" -newer "$jar" -type f -print -quit 2>/dev/null)" ]]
}
# A jar older than its sources would measure code that is not there any more: rebuild it. conf/
# counts: conf/idemgate.yaml (the defaults) ships inside the jar.
if [[ $BUILD == 1 ]] || stale "$GATEWAY_JAR" "$ROOT/pom.xml" "$ROOT/src/main" "$ROOT/conf"; then
  say "building the gateway (mvn package -DskipTests)"
  mvn -B -q -f "$ROOT/pom.xml" package -DskipTests || die "the gateway build failed"
fi
if [[ $BUILD == 1 ]] || stale "$LOADGEN_JAR" "$ROOT/bench/loadgen/pom.xml" "$ROOT/bench/loadgen/src/main"; then
  say "building the load generator (bench/loadgen)"
  mvn -B -q -f "$ROOT/bench/loadgen/pom.xml" package -DskipTests || die "the load generator build failed"
fi

mkdir -p "$RAW"
: > "$RESULTS"
: > "$META"
REPORT_DUE=1
fact timestamp "$STAMP"
fact commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
fact cpus "$(nproc)"
fact load_average_at_start "$(cut -d' ' -f1-3 /proc/loadavg)"
fact settings "duration $DURATION, warm-up $GATEWAY_WARMUP per gateway start (then up to $JIT_SETTLE_MAX more while the JIT compiles) and $WARMUP per open-loop run, open-loop rate $([[ $RATE == auto ]] && echo "auto ($RATE_FRACTION% of closed-loop, at most $RATE_MAX/s)" || echo "$RATE/s"), connections $CONNECTIONS, storm $STORM_CONCURRENCY x $STORM_ROUNDS, gateway -Xmx256m"
# The bench's own database: the gateway migrates its schema there at start-up, so nothing the
# bench writes lands in a database anyone else uses.
ensure_database
psql_bench() { PGOPTIONS='-c client_min_messages=warning' psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -v ON_ERROR_STOP=1 -q "$@"; }
# The server's settings that move a commit-bound figure, read in the bench database (a setting made
# with ALTER DATABASE applies there only): how commits reach the disk (synchronous_commit, fsync,
# wal_sync_method, commit_delay / commit_siblings), the WAL and checkpoints, and autovacuum, which
# runs on the gateway's tables during the runs (the during_* facts count its runs). Settings this
# server does not have are left out.
fact postgres "$(psql_bench -Atc "SELECT current_setting('server_version') || ', ' || string_agg(s.name || '=' || current_setting(s.name), ', ' ORDER BY s.n)
  FROM unnest(ARRAY['synchronous_commit', 'fsync', 'wal_sync_method', 'commit_delay', 'commit_siblings', 'full_page_writes',
    'wal_level', 'wal_buffers', 'wal_writer_delay', 'track_wal_io_timing', 'max_wal_size', 'checkpoint_timeout', 'shared_buffers', 'max_connections',
    'autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_insert_scale_factor',
    'autovacuum_analyze_scale_factor', 'autovacuum_vacuum_cost_delay', 'autovacuum_vacuum_cost_limit']) WITH ORDINALITY AS s(name, n)
  JOIN pg_settings p ON p.name = s.name" 2>&1 | paste -sd ' ')"
fact redis "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^redis_version/ {print $2}')"

LOADGEN_JAVA=(java "${LOADGEN_JVM_OPTIONS[@]}" -jar "$LOADGEN_JAR")
loadgen() { "${LOADGEN_JAVA[@]}" "$@"; }
# A tool output that cannot be read costs that one row of the table, not the whole run: record
# says so and fails, and its caller counts the step as failed.
record() {
  loadgen record --results "$RESULTS" "$@" > /dev/null || { echo "bench: could not read a tool's output ($*)" >&2; return 1; }
}
# Same starting point for every gateway: empty gateway tables in the bench database (only there),
# so that a later gateway is not measured against bigger tables than an earlier one.
reset_tables() {
  if psql_bench -Atqc "SELECT to_regclass('idemgate.idempotency_keys') IS NOT NULL" | grep -q t; then
    psql_bench -c "DO \$\$ DECLARE t record; BEGIN
      FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'idemgate' AND tablename NOT LIKE 'flyway%' LOOP
        EXECUTE format('TRUNCATE idemgate.%I CASCADE', t.tablename); END LOOP; END \$\$;" || return 1
  fi
  checkpoint
}
# A checkpoint before each measured database workload, so that none lands in the middle of one by
# chance (the naive SQL's baseline varied 7,679-11,352/s between three runs without this).
checkpoint() { psql_bench -c "CHECKPOINT" > /dev/null 2>&1 || echo "bench: CHECKPOINT refused (not a superuser?)" >&2; }

write_report() { # the end of every run that got this far, including one the exit trap ends
  REPORT_DUE=0
  fact load_average_at_end "$(cut -d' ' -f1-3 /proc/loadavg)"
  # Always written, empty when every step ran: the report marks a run with failed steps INCOMPLETE.
  fact failed_steps "${FAILED_STEPS[*]}"
  say "report"
  loadgen report --results "$RESULTS" --meta "$META" \
    --markdown "$RESULTS_DIR/$STAMP.md" --json "$RESULTS_DIR/$STAMP.json" || return 1
  echo "written: bench/results/$STAMP.md, bench/results/$STAMP.json (raw outputs in bench/results/$STAMP-raw/)" >&2
  (( ${#FAILED_STEPS[@]} == 0 )) \
    || echo "bench: INCOMPLETE: ${#FAILED_STEPS[@]} step(s) failed or were skipped, their rows are missing or partial: ${FAILED_STEPS[*]}" >&2
}

# ---------------------------------------------------------------------------------------------
# The gateway and the bare endpoint.

# The gateway the steps in progress send to, and why it is not there (it did not start, it exited, or
# the acquirer it calls exited), once known: every later step that needs it is then skipped.
GATEWAY_LABEL=""
GATEWAY_PROBLEM=""
# The key prefix whose replay keys the running gateway completed (prime_replays): replays of keys it
# does not have would be new payments measured as replays.
PRIMED=""

start_gateway() { # label [VAR=value ...]: starts the jar with the bench's settings plus the extras
  # 1 when it does not start: counted as the failed step gateway-<label>, and GATEWAY_PROBLEM makes
  # the steps that need it skip themselves. Called in a condition, so set -e is off in here: every
  # command that matters is checked.
  local label="$1"; shift
  local port problem=""
  GATEWAY_LABEL="$label" GATEWAY_PROBLEM="" PRIMED=""
  for port in "$HTTP_PORT" "$MANAGEMENT_PORT"; do
    port_in_use "$port" && { problem="port $port is taken (another bench, or --http-port / --management-port): the gateway could not listen there, and the readiness probe would ask the other process"; break; }
  done
  [[ -n $problem ]] || reset_tables || problem="could not empty the gateway tables in $PG_DB"
  if [[ -z $problem ]]; then
    say "starting the gateway ($label)"
    env IDEMGATE_HTTP_PORT="$HTTP_PORT" IDEMGATE_MANAGEMENT_PORT="$MANAGEMENT_PORT" \
      IDEMGATE_PG_URL="postgresql://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB" \
      IDEMGATE_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT" \
      IDEMGATE_API_KEYS="demo=$API_KEY" IDEMGATE_ADMIN_TOKEN="$ADMIN_TOKEN" \
      IDEMGATE_KEY_TTL=15m "$@" \
      java -Xmx256m -jar "$GATEWAY_JAR" > "$RAW/gateway-$label.log" 2>&1 &
    GATEWAY_PID=$!
    # One that never got ready may still be running, and would hold the ports of the next one.
    wait_until_ready "$GATEWAY_PID" "$RAW/gateway-$label.log" "$label" \
      || { problem="${NOT_READY#"the gateway ($label) "}"; stop_gateway; }
  fi
  if [[ -n $problem ]]; then
    GATEWAY_PROBLEM="the gateway ($label) did not start: $problem"
    fact "gateway_problem_$label" "did not start: $problem"
    step_failed "gateway-$label" "$problem"
    return 1
  fi
  fact "provider_$label" "$(provider_of "$@")"
  # The gateway logs only when it could not have epoll (Idemgate.java); the bare endpoint writes its own.
  fact "gateway_transport_$label" "$(grep -q 'native transport unavailable' "$RAW/gateway-$label.log" \
    && echo 'JDK NIO' || echo 'native (epoll)')"
  check_metrics_endpoint "$label" "$@"
}

provider_of() { # VAR=value ... -> the provider a gateway started with these extras calls
  local provider=simulator url="" connections="" latency=0 arg
  for arg in "$@"; do
    case "$arg" in
      IDEMGATE_PROVIDER=*) provider="${arg#*=}" ;;
      IDEMGATE_PROVIDER_URL=*) url="${arg#*=}" ;;
      IDEMGATE_PROVIDER_MAX_CONNECTIONS=*) connections="${arg#*=}" ;;
      IDEMGATE_SIMULATOR_LATENCY_MS=*) latency="${arg#*=}" ;;
    esac
  done
  if [[ $provider == http ]]; then
    echo "http: the standalone acquirer at $url over HTTP/1.1, provider_max_connections ${connections:-default}"
  else
    echo "simulator: in-process, $latency ms added per charge"
  fi
}

# /metrics on the management port answers 200 when metrics are on and 404 when they are off: a
# metrics-off figure from a gateway that still meters would compare nothing.
check_metrics_endpoint() { # label VAR=value ...
  local label="$1" expected=200 status; shift
  [[ " $* " == *" IDEMGATE_METRICS_ENABLED=false "* ]] && expected=404
  status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$MANAGEMENT_PORT/metrics" || true)"
  if [[ $status == "$expected" ]]; then
    fact "metrics_endpoint_$label" "GET /metrics answered $status (metrics $([[ $expected == 200 ]] && echo on || echo off), as set)"
  else
    fact "metrics_endpoint_$label" "GET /metrics answered ${status:-nothing}, expected $expected"
    step_failed "metrics-endpoint-$label" "GET /metrics answered ${status:-nothing}, expected $expected"
  fi
}

stop_gateway() {
  stop_pid "$GATEWAY_PID"
  GATEWAY_PID=""
}

# Whether a step can run, and whether what it measured still stands: the process it sends to must
# be there before and still be there after (a gateway that exits mid-run leaves connection errors, or
# nothing, in the tools' outputs, and wrk and the load generator would still exit 0).
gateway_gone() { # -> 0 when the gateway (or the acquirer behind it) is not there, GATEWAY_PROBLEM saying why
  [[ -n $GATEWAY_PROBLEM ]] && return 0
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
    GATEWAY_PROBLEM="the gateway ($GATEWAY_LABEL) exited (see $RAW/gateway-$GATEWAY_LABEL.log)"
  elif [[ -n $ACQUIRER_PID ]] && ! kill -0 "$ACQUIRER_PID" 2>/dev/null; then
    GATEWAY_PROBLEM="the standalone acquirer the gateway ($GATEWAY_LABEL) calls exited (see $RAW/acquirer.log)"
  else
    return 1
  fi
  fact "gateway_problem_$GATEWAY_LABEL" "$GATEWAY_PROBLEM"
}
blocked() { # target [replay-prefix] -> 0 when a step cannot run now, BLOCKED saying why
  BLOCKED=""
  if [[ $1 == bare ]]; then
    kill -0 "$BARE_PID" 2>/dev/null || BLOCKED="the bare endpoint exited (see $RAW/bare.log)"
  elif gateway_gone; then
    BLOCKED="$GATEWAY_PROBLEM"
  fi
  if [[ -z $BLOCKED && -n ${2:-} && $2 != "$PRIMED" ]]; then
    BLOCKED="the replay keys $2-* were not primed"
  fi
  [[ -n $BLOCKED ]]
}
can_run() { # step target [replay-prefix]: 0 when it can; else the step is skipped, a failed step
  blocked "${@:2}" || return 0
  step_failed "$1" "skipped: $BLOCKED"
  return 1
}
still_up() { # step target: after the step, 0 when what it measured is still there; else the step failed
  blocked "$2" || return 0
  step_failed "$1" "$BLOCKED during the step"
  return 1
}

# Heap and RSS of the running gateway, at the end of its scenarios.
gateway_memory() { # label: memory and log warnings of the running gateway
  local label="$1" rss hwm heap="n/a"
  # Warnings and errors by logger say when a figure was bought by degrading (e.g. the Redis gate
  # timing out), or why a gateway that exited did; a gateway that never started may have no log.
  [[ -f "$RAW/gateway-$label.log" ]] && fact "gateway_warnings_$label" "$(warnings_by_logger "$RAW/gateway-$label.log" \
    | awk '{ printf "%s%s %s: %d", sep, $2, $3, $1; sep = ", " }')"
  if blocked gateway; then
    fact "gateway_memory_$label" "n/a: $BLOCKED"
    return 0
  fi
  rss="$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$GATEWAY_PID/status" 2>/dev/null || echo n/a)"
  hwm="$(awk '/^VmHWM/ {print $2 " " $3}' "/proc/$GATEWAY_PID/status" 2>/dev/null || echo n/a)"
  if command -v jcmd >/dev/null; then
    jcmd "$GATEWAY_PID" GC.heap_info > "$RAW/heap-$label.txt" 2>&1 || true
    heap="$(grep -m1 -E 'total [0-9]+K, used [0-9]+K' "$RAW/heap-$label.txt" | sed -E 's/.*(total [0-9]+K, used [0-9]+K).*/\1/' || true)"
  fi
  fact "gateway_memory_$label" "RSS $rss (peak $hwm); heap ${heap:-n/a} (-Xmx256m)"
}

url() { echo "http://127.0.0.1:$HTTP_PORT/pay"; }
# True when something already accepts connections on 127.0.0.1:port: a bench process started there
# would fail to bind while the readiness probe is answered by the stranger.
port_in_use() { timeout 2 bash -c "exec 3<> /dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pid_of() { [[ $1 == bare ]] && echo "$BARE_PID" || echo "$GATEWAY_PID"; } # target -> the measured process

warm_up() { # url label [target]: send fresh payments for the warm-up time so the JIT has seen the path
  [[ "$GATEWAY_WARMUP_S" -ge 1 ]] || return 0
  local step="warm-up-$2" target="${3:-gateway}" pid jit_before
  can_run "$step" "$target" || return 0
  pid="$(pid_of "$target")"
  jit_before="$(jit_seconds "$pid")"
  say "warm-up: fresh payments for $GATEWAY_WARMUP"
  # A warm-up that fails leaves the next runs measuring a cold JIT: counted, not fatal.
  if timeout $((GATEWAY_WARMUP_S + 30)) wrk -t2 -c"$CONNECTIONS" -d"${GATEWAY_WARMUP_S}s" --timeout 10s -s "$WRK_SCRIPT" "$1" \
      -- fresh "warm-$STAMP-$RANDOM" > "$RAW/$step.txt" 2>&1; then
    still_up "$step" "$target" || return 0
    settle_jit "$1" "$2" "$target" "$pid" "$jit_before" "$GATEWAY_WARMUP_S"
  else
    still_up "$step" "$target" && step_failed "$step" "the warm-up's wrk failed (see $RAW/$step.txt)"
  fi
  return 0
}

# The JVM's JIT compile time so far, in seconds (jstat -compiler's Time); empty when not read.
jit_seconds() { jstat -compiler "$1" 2>/dev/null | awk 'NR == 2 && $4 ~ /^[0-9.]+$/ {print $4}'; }

# After the fixed warm-up, fresh payments go on in 10 s steps for as long as the JIT compiled for
# more than a tenth of the last stretch (1 s of compile time in 10 s), up to --jit-settle-max. On a
# slow VM the C2 compiler thread still used half of the gateway's CPU 100 s after start: runs
# measured then were of code half compiled, and the gateway's CPU per payment counted the compiler.
# Fact jit_warm_up_<label>: how long the warm-up took, and the JIT's share at its end.
settle_jit() { # url label target pid jit-seconds-before stretch-seconds
  local url="$1" label="$2" target="$3" pid="$4" before="$5" stretch="$6" after extra=0
  after="$(jit_seconds "$pid")"
  if [[ -z $before || -z $after ]]; then
    fact "jit_warm_up_$label" "${GATEWAY_WARMUP_S} s (the JIT's compile time not read: jstat failed)"
    return 0
  fi
  while awk -v a="$after" -v b="$before" -v s="$stretch" 'BEGIN {exit !((a - b) > s / 10)}' \
      && [[ $extra -lt $JIT_SETTLE_MAX_S ]]; do
    [[ $extra -gt 0 ]] || say "warm-up: the JIT compiled $(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.1f", a - b}') s of the last ${stretch} s; on in steps of 10 s"
    before="$after"
    stretch=10
    timeout 40 wrk -t2 -c"$CONNECTIONS" -d10s --timeout 10s -s "$WRK_SCRIPT" "$url" \
        -- fresh "warm-$STAMP-$RANDOM" > "$RAW/warm-up-$label-jit.txt" 2>&1 || true
    still_up "warm-up-$label" "$target" || return 0
    extra=$((extra + 10))
    after="$(jit_seconds "$pid")"
    [[ -n $after ]] || break
  done
  local share
  share="$(awk -v a="${after:-0}" -v b="$before" -v s="$stretch" 'BEGIN {printf "%.1f s of compile time in the last %d s", a - b, s}')"
  if [[ $extra -eq 0 ]]; then
    fact "jit_warm_up_$label" "${GATEWAY_WARMUP_S} s ($share)"
  elif awk -v a="${after:-0}" -v b="$before" 'BEGIN {exit !((a - b) > 1)}'; then
    fact "jit_warm_up_$label" "${GATEWAY_WARMUP_S} s + ${extra} s, and the JIT still compiling ($share): the runs that follow count the compiler"
  else
    fact "jit_warm_up_$label" "${GATEWAY_WARMUP_S} s + ${extra} s until the JIT settled ($share)"
  fi
}

# What else went on during a wrk run or a pgbench run, so that a long tail with no error, or a slow
# row, can be explained or ruled out: CPU time the hypervisor took (steal), the measured JVM's
# garbage collections (jstat), PostgreSQL's checkpoints and autovacuum runs on the gateway's tables,
# and the WAL PostgreSQL wrote (pg_stat_wal: records, full-page images, bytes, writes because the
# WAL buffers were full, writes and syncs of the WAL; their times only where track_wal_io_timing is
# on). Counters only, read before and after the run, outside its window. pg_stat_wal counts the
# whole server, not only the bench database, and a backend adds its counts there within about a
# second of its work: the window is the run's, give or take that second.
WAL_IO_TIMING="$(psql_bench -Atc "SHOW track_wal_io_timing" 2>/dev/null || echo off)"
background_snapshot() { # pid or "" -> "steal all ygc ygct fgc fgct cgc cgct checkpoints autovacuum autoanalyze
  #                                        wal_records wal_fpi wal_bytes wal_buffers_full wal_write wal_sync wal_write_time wal_sync_time"
  local gc="- - - - - -" pg wal
  if [[ -n "$1" ]] && command -v jstat >/dev/null; then
    # A process that has exited fails jstat: no figures, not the end of the run.
    gc="$(LC_ALL=C jstat -gcutil "$1" 2>/dev/null | awk 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i }
      NR == 2 { print $col["YGC"], $col["YGCT"], $col["FGC"], $col["FGCT"], $col["CGC"], $col["CGCT"] }' || true)"
    [[ -n "$gc" ]] || gc="- - - - - -"
  fi
  pg="$(psql_bench -Atc "SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
      coalesce(sum(autovacuum_count), 0), coalesce(sum(autoanalyze_count), 0)
      FROM pg_stat_user_tables WHERE schemaname = 'idemgate'" -F ' ' 2>/dev/null || true)"
  # pg_stat_wal is PostgreSQL 14 and later: without it, dashes.
  wal="$(psql_bench -Atc "SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full, wal_write, wal_sync,
      wal_write_time, wal_sync_time FROM pg_stat_wal" -F ' ' 2>/dev/null || true)"
  printf '%s %s %s %s\n' "$(awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)" "$gc" \
    "${pg:-- - -}" "${wal:-- - - - - - - -}"
}
background_fact() { # name "snapshot before" "snapshot after" jvm-name ("" for none) [count unit]
  # With a count (the run's requests, or payments for pgbench), the WAL figures per request or payment too.
  fact "$1" "$(printf '%s %s\n' "$2" "$3" | awk -v jvm="$4" -v count="${5:-0}" -v unit="${6:-requests}" -v timing="$WAL_IO_TIMING" '
    function d(i) { return $(i + half) - $i }
    function per(i) { return d(i) / count }
    { half = NF / 2
      steal = $2 < $(2 + half) ? sprintf("%.1f%%", 100 * d(1) / d(2)) : "n/a"
      if ($3 == "-" || $(3 + half) == "-") gc = "n/a"
      else gc = sprintf("%d young (%.0f ms), %d full (%.0f ms), %d concurrent-cycle pauses (%.0f ms)", d(3), 1000 * d(4), d(5), 1000 * d(6), d(7), 1000 * d(8))
      if ($9 == "-" || $(9 + half) == "-") pg = "n/a"
      else pg = sprintf("%d checkpoints, %d autovacuum and %d autoanalyze runs on the gateway tables", d(9), d(10), d(11))
      if ($12 == "-" || $(12 + half) == "-") wal = "n/a (no pg_stat_wal)"
      else {
        wal = sprintf("%d records, %d full-page images, %.0f bytes, %d writes with the WAL buffers full, %d writes, %d syncs",
          d(12), d(13), d(14), d(15), d(16), d(17))
        wal = wal (timing == "on" ? sprintf(", %.0f ms writing, %.0f ms syncing", d(18), d(19)) : " (times not tracked: track_wal_io_timing off)")
        if (count > 0)
          wal = wal sprintf("; per %s (%d): %.2f records, %.3f full-page images, %.0f bytes, %.3f writes, %.3f syncs",
            substr(unit, 1, length(unit) - 1), count, per(12), per(13), per(14), per(16), per(17))
      }
      printf "CPU steal %s; %sPostgreSQL: %s; WAL (whole server): %s", steal, (jvm == "" ? "" : jvm " GC: " gc "; "), pg, wal }')"
}

LAST_WRK_THROUGHPUT=0
run_wrk() { # scenario target url mode prefix [connections]
  local scenario="$1" target="$2" url="$3" mode="$4" prefix="$5" conns="${6:-$CONNECTIONS}"
  local run="$1-wrk${6:+-c$6}${ROUND:+-round$ROUND}"
  local out="$RAW/$run.txt" pid before
  LAST_WRK_THROUGHPUT=0 WRK_CPU_BEFORE="" WRK_CPU_AFTER=""
  can_run "$run" "$target" "$([[ $mode == replay ]] && echo "$prefix")" || return 0
  say "$scenario: wrk, closed loop, $conns connections, $DURATION"
  pid="$(pid_of "$target")"
  before="$(background_snapshot "$pid")"
  # CPU ticks right around wrk, for cpu_fact (the snapshots above and below cost CPU of their own).
  WRK_CPU_BEFORE="$(cpu_snapshot)"
  # bash's time gives wrk's own user and system seconds (cpu_fact's load generator), in $run.cpu.
  local TIMEFORMAT='%3U %3S'
  if ! { time timeout $((DURATION_S + 60)) wrk -t2 -c"$conns" -d"${DURATION_S}s" --timeout 10s -s "$WRK_SCRIPT" "$url" \
      -- "$mode" "$prefix" "$REPLAY_KEYS" "$API_KEY" > "$out" 2>&1; } 2> "$RAW/$run.cpu"; then
    still_up "$run" "$target" && step_failed "$run" "wrk failed (see $out)"
    return 0
  fi
  WRK_CPU_AFTER="$(cpu_snapshot)"
  # A run during which the process went away is not recorded: its throughput would also set the
  # rate of the open-loop run after it.
  still_up "$run" "$target" || { WRK_CPU_AFTER=""; return 0; }
  background_fact "during_$run" "$before" "$(background_snapshot "$pid")" "$target" \
    "$(grep -o '"requests":[0-9]*' "$out" | head -1 | cut -d: -f2 || true)"
  record --tool wrk --input "$out" --scenario "$scenario" --target-name "$target" --connections "$conns" \
    --note "latency from actual send (closed loop)" || { step_failed "$run" "could not read wrk's output (see $out)"; return 0; }
  LAST_WRK_THROUGHPUT="$(grep -o '"throughput":[0-9]*' "$out" | head -1 | cut -d: -f2 || true)"
}

run_pgbench() { # scenario script note [payments per transaction] [clients] [PGOPTIONS]
  # ROUND=n in the environment: one of the rounds in turn (step and log names get -round<n>).
  local scenario="$1" script="$2" note="$3" per="${4:-1}" clients="${5:-$CONNECTIONS}" options="${6:-}"
  local step="$1${5:+-c$5}${ROUND:+-round$ROUND}-pgbench"
  local out="$RAW/$step.txt" log="pgbench-$1${5:+-c$5}${ROUND:+-round$ROUND}" before transactions
  checkpoint
  before="$(background_snapshot "")"
  ( cd "$RAW" && PGOPTIONS="$options" timeout $((DURATION_S + 60)) pgbench -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -n -M prepared \
      -c "$clients" -j 2 -T "$DURATION_S" -f "$script" -l --log-prefix "$log" \
      -D response_body="$(cat "$ROOT/bench/pgbench/response-body.json")" "$PG_DB" ) > "$out" 2>&1 \
    || { step_failed "$step" "pgbench failed (see $out)"; return 0; }
  transactions="$(awk -F': ' '/^number of transactions actually processed/ { split($2, n, "/"); print n[1] }' "$out")"
  background_fact "during_$step" "$before" "$(background_snapshot "")" "" "$(( ${transactions:-0} * per ))" payments
  record --tool pgbench --input "$out" --log "$RAW/$log" --scenario "$scenario" --target-name postgres \
    --protocol sql --connections "$clients" --per-transaction "$per" --note "$note" \
    || step_failed "$step" "could not read pgbench's output (see $out)"
}

open_rate() { # the fixed --rate, or a share of what the closed loop just sustained; nothing without one
  if [[ "$RATE" != auto ]]; then
    echo "$RATE"
  elif [[ "${LAST_WRK_THROUGHPUT:-0}" =~ ^[0-9]+$ ]] && (( LAST_WRK_THROUGHPUT > 0 )); then
    local r=$(( LAST_WRK_THROUGHPUT * RATE_FRACTION / 100 ))
    r=$(( r > RATE_MAX ? RATE_MAX : r ))
    echo $(( r < 10 ? 10 : r ))
  fi
}

run_open() { # scenario target base-url mode [more loadgen options]
  local scenario="$1" target="$2" base="$3" mode="$4" rate pid before prefix="" previous="" arg status=0; shift 4
  for arg in "$@"; do
    [[ $previous == --key-prefix ]] && prefix="$arg"
    previous="$arg"
  done
  can_run "$scenario-open" "$target" "$([[ $mode == replay ]] && echo "$prefix")" || return 0
  rate="$(open_rate)"
  # With --rate auto and no closed-loop figure (its wrk run failed), a rate would be a guess: the run
  # would measure a near-idle gateway under the scenario's name.
  [[ -n "$rate" ]] || { step_failed "$scenario-open" "skipped: no closed-loop throughput to take the auto rate from"; return 0; }
  say "$scenario: load generator, open loop at $rate/s, $DURATION"
  pid="$(pid_of "$target")"
  before="$(background_snapshot "$pid")"
  timeout $((DURATION_S + WARMUP_S + 90)) "${LOADGEN_JAVA[@]}" open --url "$base" --mode "$mode" \
    --rate "$rate" --duration "${DURATION_S}s" --warmup "${WARMUP_S}s" --connections "$CONNECTIONS" \
    --scenario "$scenario" --target-name "$target" --results "$RESULTS" "$@" > "$RAW/$scenario-open.txt" 2>&1 \
    || status=$?
  # A row the generator wrote against a process that went away stays, with its errors: the failed
  # step says it is partial.
  if still_up "$scenario-open" "$target" && (( status != 0 )); then
    step_failed "$scenario-open" "the open-loop run failed (see $RAW/$scenario-open.txt)"
  fi
  # Warm-up included: the generator's warm-up and measured window run back to back.
  background_fact "during_$scenario-open" "$before" "$(background_snapshot "$pid")" "$target"
}

BASE="http://127.0.0.1:$HTTP_PORT"

# ---------------------------------------------------------------------------------------------
# Gateway scenarios, metrics on, no provider latency.

# Nearly every scenario runs on the main gateway, and what stops it starting (a broken jar or
# config, a port another bench holds, an unreachable database) would stop every later gateway too,
# while the baselines would load a machine another bench may be measuring on: the run stops here,
# and the exit trap writes the report (failed steps gateway-main and run-stopped).
start_gateway main || die "$GATEWAY_PROBLEM"
warm_up "$(url)" main

group_totals() { # -> "claim_count claim_sum complete_count complete_sum" from the gateway's /metrics
  { curl -s --max-time 5 "http://127.0.0.1:$MANAGEMENT_PORT/metrics" || true; } | awk '
    /^idemgate_store_group_payments_(count|sum)\{operation="(claim|complete)"/ {
      split($1, name, "{"); part = name[1]; sub(/.*_/, "", part)
      op = ($1 ~ /"claim"/) ? "claim" : "complete"; v[op "_" part] = $2 }
    END { printf "%s %s %s %s\n", v["claim_count"] + 0, v["claim_sum"] + 0, v["complete_count"] + 0, v["complete_sum"] + 0 }'
}
# Where the CPU goes during a wrk run, per request, from /proc (clock ticks, user + system):
# the gateway, PostgreSQL's processes and redis-server when they run on this machine, the rest
# of the machine's busy time (the load generator and anything else), and its idle time.
# Each process is counted on its own, which matters for PostgreSQL's: a backend that starts inside
# the window counts all its ticks, one that ends inside it (a pool connection closed, as the gateway's pools close idle
# ones) counts none, and its ticks since the window began fall to "rest". Before session 30 the
# ticks were summed over the processes alive at each end, so a backend ending inside the window
# took its whole life's ticks off PostgreSQL's share: -72 us per replay in 20261201T004626Z.
CLK_TCK="$(getconf CLK_TCK)"
every_process() { # -> "pid:name:ticks,..." for every process now ("-" for none)
  # cat goes on past a process that ended since the glob; the name is the one in parentheses (it may
  # hold spaces), cut at its first "/" (kworker/1:1H-kblockd is a kworker) and kept to a word.
  cat /proc/[0-9]*/stat 2>/dev/null | awk '{
    open = index($0, "("); match($0, /.*\)/); name = substr($0, open + 1, RLENGTH - open - 1)
    sub(/\/.*/, "", name); gsub(/[^A-Za-z0-9._-]/, "_", name)
    split(substr($0, RLENGTH + 2), f, " ")
    printf "%s:%s:%d,", $1, name, f[12] + f[13] }
    END { if (NR == 0) printf "-" }'
}
# The machine's busy time is taken by the clock: every core's time since boot (/proc/uptime) less
# its idle (with iowait) and stolen time, which the kernel measures as they pass. /proc/stat's own
# user and system ticks are sampled at the timer tick and miss the short bursts an event loop runs
# between idle spells: during the fresh-key rounds of 20261202T052348Z they fell about 4 % short of
# what the processes' own (exact) times add up to, and the unnamed rest read -4 to -16 us; threads
# that work 20 us and sleep 150 us (CpuFactTest) had a tenth of the cores' time go unaccounted.
cpu_snapshot() { # -> "busy idle every-process", ticks so far
  printf '%s %s\n' "$(awk -v cores="$(nproc)" -v hz="$CLK_TCK" '
      FILENAME == "/proc/uptime" { up = $1 }
      /^cpu / { idle = $5 + $6; steal = $9 }
      END { printf "%.0f %d", cores * up * hz - idle - steal, idle }' /proc/uptime /proc/stat)" "$(every_process)"
}
cpu_fact() { # name "snapshot before" "snapshot after" wrk-output
  # Every process is counted one by one, by the ticks it grew between the snapshots: one alive at
  # the end and not at the start counts all its ticks, one that ended counts none (see above). The
  # gateway is its pid, PostgreSQL every process named postgres, Redis every redis-server. The rest
  # is named as far as it can be: the load generator's own CPU (bash's time of wrk, in the .cpu file
  # beside its output), then the other processes alive at the end that used the most, and what is
  # left unnamed (processes that came and went within the run, interrupts). A slow row with a large
  # rest says there what took the CPU.
  local requests wrk_seconds
  [[ -n $3 ]] || { fact "$1" "n/a: the wrk run failed or was skipped"; return 0; }
  requests="$(grep -o '"requests":[0-9]*' "$4" | head -1 | cut -d: -f2 || true)"
  wrk_seconds="$(awk 'NF == 2 { print $1 + $2 }' "${4%.txt}.cpu" 2>/dev/null | tail -1 || true)"
  local pg_local=0 redis_local=0
  pgrep -x postgres > /dev/null && pg_local=1
  pgrep -x redis-server > /dev/null && redis_local=1
  fact "$1" "$(printf '%s %s\n' "$2" "$3" | awk -v n="${requests:-0}" -v hz="$CLK_TCK" -v pg_local="$pg_local" \
      -v redis_local="$redis_local" -v gateway="$GATEWAY_PID" -v wrk_seconds="${wrk_seconds:-}" '
    function us(t) { return sprintf("%.0f", t * 1e6 / hz / n) }
    # Sets g, p and r (the gateway, PostgreSQL, Redis) and others[name] from the ticks each process
    # alive at the end grew since the start.
    function grown(before, after,   parts, kv, i, n1, n2, was, t) {
      n1 = split(before, parts, ","); for (i = 1; i <= n1; i++) if (split(parts[i], kv, ":") == 3) was[kv[1]] = kv[3]
      n2 = split(after, parts, ",")
      for (i = 1; i <= n2; i++) {
        if (split(parts[i], kv, ":") != 3) continue
        t = kv[3] - ((kv[1] in was) ? was[kv[1]] : 0)
        if (kv[1] == gateway) g += t; else if (kv[2] == "postgres") p += t
        else if (kv[2] == "redis-server") r += t; else others[kv[2]] += t
      } }
    # The three names that used the most, largest first; named is their sum.
    function largest(   name, best, k, text) {
      named = 0; text = ""
      for (k = 1; k <= 3; k++) {
        best = ""; for (name in others) if (others[name] > 0 && (best == "" || others[name] > others[best])) best = name
        if (best == "" || us(others[best]) + 0 < 1) break
        text = text (text == "" ? "" : ", ") best " " us(others[best]); named += others[best]; delete others[best]
      }
      return text }
    n > 0 { grown($3, $6); busy = $4 - $1; idle = $5 - $2; rest = busy - g - p - r
      split_rest = ""
      if (wrk_seconds != "") {
        alive = largest(); wrk_ticks = wrk_seconds * hz
        split_rest = sprintf(" (of it the load generator %s; alive at the end %s; unnamed %s)", us(wrk_ticks),
          (alive == "" ? "none" : alive), us(rest - wrk_ticks - named))
      }
      printf "gateway %s, postgres %s, redis %s, rest (load generator and others) %s%s, idle %s (us per request, %d requests)",
        us(g), (pg_local ? us(p) : "n/a (not local)"), (redis_local ? us(r) : "n/a (not local)"), us(rest), split_rest, us(idle), n }
    n == 0 { print "n/a: no request count from wrk" }')"
}

GROUPS_BEFORE="$(group_totals)"
run_wrk fresh gateway "$(url)" fresh "fresh-$STAMP"
cpu_fact fresh_cpu_per_request "$WRK_CPU_BEFORE" "$WRK_CPU_AFTER" "$RAW/fresh-wrk.txt"
FRESH_WRK_THROUGHPUT="$LAST_WRK_THROUGHPUT"
# Payments per grouped statement during the fresh wrk run (idemgate_store_group_payments).
if blocked gateway; then
  fact fresh_payments_per_statement "n/a: $BLOCKED"
else
  fact fresh_payments_per_statement "$(printf '%s %s\n' "$GROUPS_BEFORE" "$(group_totals)" | awk '{
    claims = $6 - $2; completions = $8 - $4
    if ($5 - $1 > 0 && $7 - $3 > 0) printf "claim %.1f (%d statements), complete %.1f (%d statements)", claims / ($5 - $1), $5 - $1, completions / ($7 - $3), $7 - $3
    else print "n/a: the gateway has no idemgate_store_group_payments meter" }')"
fi
run_open fresh gateway "$BASE" fresh --key-prefix "fresh-open-$STAMP"
# The same fresh keys at more connections: the grouped path carries more payments per statement.
for conns in $SWEEP_CONNECTIONS; do
  run_wrk fresh-concurrency gateway "$(url)" fresh "fresh-c$conns-$STAMP" "$conns"
done

# Fresh keys and the naive per-payment SQL in turn, three rounds of each on the running gateway
# (fresh keys, naive SQL, fresh keys, ...), each at --connections, each round on new keys: the
# fresh-key target's ratio is taken from the two medians. The naive SQL alone moved from 3,354 to
# 5,028/s within an hour on one VM, so a single run of each, minutes apart, said more about the
# machine than about the gateway. A checkpoint before every round of either side (run_pgbench
# takes its own), so each starts from the same point; neither side's table is emptied between
# rounds. The bench tables are laid here for the rounds (the baselines below lay them again).
if psql_bench -f "$ROOT/bench/pgbench/schema.sql" > /dev/null; then
  for round in 1 2 3; do
    checkpoint
    ROUND=$round run_wrk fresh-in-turn gateway "$(url)" fresh "fresh-turn$round-$STAMP"
    # The CPU split of each round the target is read from, beside the single fresh run's: one
    # run's split can be another process's doing (a build, a download) and say nothing of the gateway.
    cpu_fact "fresh_in_turn_cpu_per_request_round$round" "$WRK_CPU_BEFORE" "$WRK_CPU_AFTER" \
      "$RAW/fresh-in-turn-wrk-round$round.txt"
    say "pg-naive-in-turn: pgbench, naive per-payment SQL, $CONNECTIONS clients, round $round"
    ROUND=$round run_pgbench pg-naive-in-turn "$ROOT/bench/pgbench/naive.pgbench" \
      "INSERT + UPDATE per payment, one commit each; round $round in turn with fresh-in-turn"
  done
else
  for round in 1 2 3; do
    step_failed "fresh-in-turn-wrk-round$round" "skipped: could not create the bench tables (bench/pgbench/schema.sql) for the naive SQL in turn"
    step_failed "pg-naive-in-turn-round$round-pgbench" "skipped: could not create the bench tables (bench/pgbench/schema.sql)"
  done
fi

prime_replays() { # prefix: completes $REPLAY_KEYS keys for the replay scenarios, then warms the replay path
  # Only keys that were primed are replayed (PRIMED): the replay runs of keys that were not are skipped.
  local step="prime-${1%-"$STAMP"}"
  PRIMED=""
  can_run "$step" gateway || return 0
  say "replay: priming $REPLAY_KEYS completed keys, then replaying them for $WARMUP unmeasured"
  if ! timeout 300 "${LOADGEN_JAVA[@]}" prime --url "$BASE" --keys "$REPLAY_KEYS" --key-prefix "$1" \
      --connections "$CONNECTIONS" > "$RAW/prime-$1.txt" 2>&1; then
    still_up "$step" gateway && step_failed "$step" "priming the replay keys failed (see $RAW/prime-$1.txt)"
    return 0
  fi
  still_up "$step" gateway || return 0
  PRIMED="$1"
  # Fresh payments do not compile the replay path: without this the JIT works through the first
  # seconds of the measured replay run (37,800 vs 61,000 replays/s on the same build).
  [[ "$WARMUP_S" -ge 1 ]] || return 0
  step="warm-up-${1%-"$STAMP"}"
  if timeout $((WARMUP_S + 30)) wrk -t2 -c"$CONNECTIONS" -d"${WARMUP_S}s" --timeout 10s \
      -s "$WRK_SCRIPT" "$(url)" -- replay "$1" "$REPLAY_KEYS" "$API_KEY" > "$RAW/$step.txt" 2>&1; then
    still_up "$step" gateway || return 0
  else
    still_up "$step" gateway && step_failed "$step" "the replay warm-up's wrk failed (see $RAW/$step.txt)"
  fi
  return 0
}
REPLAY_PREFIX="replay-$STAMP"
prime_replays "$REPLAY_PREFIX"
run_wrk replay gateway "$(url)" replay "$REPLAY_PREFIX"
cpu_fact replay_cpu_per_request "$WRK_CPU_BEFORE" "$WRK_CPU_AFTER" "$RAW/replay-wrk.txt"
REPLAY_WRK_THROUGHPUT="$LAST_WRK_THROUGHPUT"
run_open replay gateway "$BASE" replay --key-prefix "$REPLAY_PREFIX" --keys "$REPLAY_KEYS"

# The bare Vert.x endpoint (a baseline), started beside the idle gateway so that replays and the
# bare endpoint can also be measured in turn below.
BARE_PROBLEM=""
start_bare() { # -> 0 once the bare endpoint answers; 1 if it cannot, with BARE_PROBLEM saying why
  if port_in_use "$BARE_PORT"; then
    BARE_PROBLEM="port $BARE_PORT is taken (--bare-port): another process would answer as the bare endpoint"
    return 1
  fi
  say "bare Vert.x endpoint on port $BARE_PORT"
  # Same JVM flags and transport as the gateway: the baseline must differ from it only by what it
  # does. It writes the transport it got (epoll or NIO) as the fact bare_transport.
  java -Xmx256m -jar "$LOADGEN_JAR" bare --port "$BARE_PORT" --fact-file "$META" > "$RAW/bare.log" 2>&1 &
  BARE_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null --max-time 2 -X POST -d '{}' "http://127.0.0.1:$BARE_PORT/pay" 2>/dev/null && return 0
    kill -0 "$BARE_PID" 2>/dev/null || { BARE_PROBLEM="it exited at start-up (see $RAW/bare.log)"; return 1; }
    sleep 0.5
  done
  BARE_PROBLEM="it did not answer within 30 s (see $RAW/bare.log)"
  return 1
}
if start_bare; then
  warm_up "http://127.0.0.1:$BARE_PORT/pay" bare bare
  run_wrk bare bare "http://127.0.0.1:$BARE_PORT/pay" fresh "bare-$STAMP"
  # Open loop at the replay scenario's rate, not at a share of the bare endpoint's own capacity:
  # the two latencies are then comparable, and the rate stays within what the generator can send.
  LAST_WRK_THROUGHPUT="$REPLAY_WRK_THROUGHPUT"
  run_open bare bare "http://127.0.0.1:$BARE_PORT" fresh --key-prefix "bare-open-$STAMP"
  # Replays and the bare endpoint in turn, three rounds of each: the replay target's ratio is taken
  # from the two medians. Single runs minutes apart are at the mercy of the machine: the default
  # gateway started again served replays at 0.86x and 1.17x its first run (20261128T232416Z, 234839Z).
  for round in 1 2 3; do
    ROUND=$round run_wrk replay-in-turn gateway "$(url)" replay "$REPLAY_PREFIX"
    ROUND=$round run_wrk bare-in-turn bare "http://127.0.0.1:$BARE_PORT/pay" fresh "bare-turn$round-$STAMP"
  done
else
  step_failed bare "skipped, and the replay rounds in turn with it: the bare endpoint did not start: $BARE_PROBLEM"
fi
stop_pid "$BARE_PID"
BARE_PID=""

STORM_OK=1
if can_run storm gateway; then
  say "storm: $STORM_CONCURRENCY concurrent requests on one key, $STORM_ROUNDS rounds"
  # The storm counts each round's payments in the gateway's ledger too.
  STORM_LEDGER=(--pg-url "postgresql://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB")
  timeout 600 "${LOADGEN_JAVA[@]}" storm --url "$BASE" --admin-url "http://127.0.0.1:$MANAGEMENT_PORT" \
    --admin-token "$ADMIN_TOKEN" --concurrency "$STORM_CONCURRENCY" --rounds "$STORM_ROUNDS" \
    --key-prefix "storm-$STAMP" --results "$RESULTS" "${STORM_LEDGER[@]}" > "$RAW/storm.txt" 2>&1 || STORM_OK=0
  if still_up storm gateway; then
    fact storm_exactly_one_charge_per_round "$([[ $STORM_OK == 1 ]] && echo yes || echo "NO: see $RAW/storm.txt")"
    # A storm that found a second charge still wrote its row (the verdict above, and exit status 1);
    # one that wrote none did not run to its end.
    grep -q '"scenario":"storm"' "$RESULTS" || step_failed storm "the storm wrote no result (see $RAW/storm.txt)"
  else
    # Answers missing because the gateway went away are no verdict on its charges; a row the storm
    # still wrote keeps what it saw, and the report's storm check reads it.
    # But a round that saw a second payment before the gateway went away is a verdict: NO.
    STORM_OK=1
    if grep -Eq 'failed: .*\b(([2-9]|[1-9][0-9]+) (answers created|charges in|charge requests|rows in the ledger)|201s named ([2-9]|[1-9][0-9]+) payments)' "$RAW/storm.txt"; then
      STORM_OK=0
      fact storm_exactly_one_charge_per_round "NO: a round saw a second payment, then $BLOCKED (see $RAW/storm.txt)"
    else
      fact storm_exactly_one_charge_per_round "unknown: $BLOCKED during the storm (see $RAW/storm.txt)"
    fi
  fi
else
  fact storm_exactly_one_charge_per_round "n/a: skipped, $BLOCKED"
fi

run_wrk mixed gateway "$(url)" mixed "mixed-$STAMP"
run_open mixed gateway "$BASE" mixed --key-prefix "mixed-open-$STAMP" --duplicate-percent 1 --decline-percent 5

# h2c fresh keys: no closed-loop tool can send a new key per request over h2c, so the auto rate
# follows the HTTP/1.1 fresh run.
# Like an HTTP/2 client or sidecar: up to 4 connections, each filled to 100 streams before the
# next opens, so at moderate rates one connection (one gateway event loop) carries everything.
H2_CLIENTS=$(( CONNECTIONS < 4 ? CONNECTIONS : 4 ))
H2_STREAMS=$(( (CONNECTIONS + H2_CLIENTS - 1) / H2_CLIENTS ))
LAST_WRK_THROUGHPUT="$FRESH_WRK_THROUGHPUT"
run_open fresh-h2c gateway "$BASE" fresh --protocol h2c --streams 100 --connections "$H2_CLIENTS" \
  --key-prefix "h2c-open-$STAMP"

# Fresh keys at full speed over h2c: h2load cannot vary a header per request, so the in-repo
# generator runs the closed loop, and over HTTP/1.1 too, so that one tool compares the protocols.
# CONNECTIONS requests in flight: that many HTTP/1.1 connections, or H2_CLIENTS h2c connections of
# H2_STREAMS streams each.
run_closed() { # scenario [more loadgen options]
  local scenario="$1" status=0; shift
  can_run "$scenario-closed" gateway || return 0
  say "$scenario: load generator, closed loop, $CONNECTIONS in flight, $DURATION"
  timeout $((DURATION_S + WARMUP_S + 90)) "${LOADGEN_JAVA[@]}" closed --url "$BASE" --concurrency "$CONNECTIONS" \
    --duration "${DURATION_S}s" --warmup "${WARMUP_S}s" --scenario "$scenario" --target-name gateway \
    --results "$RESULTS" "$@" > "$RAW/$scenario-closed.txt" 2>&1 || status=$?
  if still_up "$scenario-closed" gateway && (( status != 0 )); then
    step_failed "$scenario-closed" "the closed-loop run failed (see $RAW/$scenario-closed.txt)"
  fi
}
run_closed fresh --connections "$CONNECTIONS" --key-prefix "fresh-closed-$STAMP"
run_closed fresh-h2c --protocol h2c --connections "$H2_CLIENTS" --streams "$H2_STREAMS" --key-prefix "h2c-closed-$STAMP"

H2_BODY="$RAW/h2load-body.json"
printf '{"amount":1999,"currency":"EUR","source":"tok_visa","merchant_reference":"%s-0"}' "$REPLAY_PREFIX" > "$H2_BODY"
if can_run replay-h2c-h2load gateway "$REPLAY_PREFIX"; then
  say "replay-h2c: h2load, closed loop, one completed key over h2c, $DURATION"
  if timeout $((DURATION_S + 60)) h2load -c "$H2_CLIENTS" -m "$H2_STREAMS" -t 1 -D "$DURATION_S" \
      -H "Authorization: Bearer $API_KEY" -H "Idempotency-Key: $REPLAY_PREFIX-0" -H "Content-Type: application/json" \
      -d "$H2_BODY" --log-file "$RAW/h2load.log" "$BASE/pay" > "$RAW/replay-h2c-h2load.txt" 2>&1; then
    if still_up replay-h2c-h2load gateway; then
      record --tool h2load --input "$RAW/replay-h2c-h2load.txt" --log "$RAW/h2load.log" --scenario replay-h2c \
        --protocol h2c --connections $((H2_CLIENTS * H2_STREAMS)) \
        --note "$H2_CLIENTS connections x $H2_STREAMS streams; h2load cannot vary a header per request, so one replayed key" \
        || step_failed replay-h2c-h2load "could not read h2load's output (see $RAW/replay-h2c-h2load.txt)"
    fi
  elif still_up replay-h2c-h2load gateway; then
    step_failed replay-h2c-h2load "h2load failed (see $RAW/replay-h2c-h2load.txt)"
  fi
fi

gateway_memory main
stop_gateway

# A gateway of its own with one setting changed: fresh keys and replays (scenarios fresh-LABEL and
# replay-LABEL), its memory, then it stops.
run_variant() { # label key-tag VAR=value
  local label="$1" tag="$2"; shift 2
  # One that does not start is a failed step, and so is each of its runs, skipped.
  start_gateway "$label" "$@" || true
  warm_up "$(url)" "$label"
  run_wrk "fresh-$label" gateway "$(url)" fresh "fresh-$tag-$STAMP"
  prime_replays "replay-$tag-$STAMP"
  run_wrk "replay-$label" gateway "$(url)" replay "replay-$tag-$STAMP"
  gateway_memory "$label"
  stop_gateway
}

# ---------------------------------------------------------------------------------------------
# Metrics off: only when the gateway has the setting (it ships conf/idemgate.yaml in its jar).

if { unzip -p "$GATEWAY_JAR" idemgate.yaml 2>/dev/null || cat "$ROOT/conf/idemgate.yaml"; } | grep -q '^metrics_enabled:'; then
  run_variant metrics-off nometrics IDEMGATE_METRICS_ENABLED=false
  fact metrics_off "run (IDEMGATE_METRICS_ENABLED=false; what /metrics answered: metrics_endpoint_metrics-off)"
else
  fact metrics_off "n/a: the gateway has no metrics_enabled setting yet (IDEMGATE_METRICS_ENABLED), so metrics were on throughout"
fi

# ---------------------------------------------------------------------------------------------
# What replays cost without the in-process replay cache (every replay a Redis round trip, a JSON
# parse and a canonical fingerprint), and without the per-request access log line.

start_gateway no-replay-cache IDEMGATE_REPLAY_CACHE_ENTRIES=0 || true  # if not, its runs are skipped, each a failed step
warm_up "$(url)" no-replay-cache
prime_replays "replay-nocache-$STAMP"
run_wrk replay-no-cache gateway "$(url)" replay "replay-nocache-$STAMP"
gateway_memory no-replay-cache
stop_gateway

run_variant no-access-log nolog IDEMGATE_LOG_LEVEL=warn

# ---------------------------------------------------------------------------------------------
# One API verticle (one event loop for the API) instead of one per core: on a machine whose cores
# the gateway shares with PostgreSQL, Redis and the load generator, fewer busy threads may beat
# more (fewer wake-ups and context switches, no hops between the API loops and the shared store).

run_variant one-api-verticle oneloop IDEMGATE_API_INSTANCES=1

# ---------------------------------------------------------------------------------------------
# The default gateway once more, after the variants: how far two runs of the same gateway land
# apart on this machine in this invocation. A variant's ratio inside that spread says nothing
# (in run 20261128T230413Z the gateway without its access log served replays at 0.82x the one with it).

run_variant default-again again

# ---------------------------------------------------------------------------------------------
# Provider latency over the network: the standalone acquirer (`idemgate acquirer`, the peer of the
# http connector) runs in a process of its own and answers every charge after LATENCY_MS, and the
# gateway calls it over HTTP (provider: http) as it would call a real acquirer. The acquirer stands
# in for another machine, so it gets the load generator's light JVM flags (C1 only, serial GC): as
# little of the shared cores as it can do with.

ACQUIRER_PROBLEM=""
start_acquirer() { # -> 0 once the acquirer answers; 1 if it cannot, with ACQUIRER_PROBLEM saying why
  if port_in_use "$ACQUIRER_PORT"; then
    ACQUIRER_PROBLEM="port $ACQUIRER_PORT is taken (--acquirer-port): another process would answer as the acquirer"
    return 1
  fi
  say "the standalone acquirer on port $ACQUIRER_PORT, $LATENCY_MS ms per charge"
  java "${LOADGEN_JVM_OPTIONS[@]}" -jar "$GATEWAY_JAR" acquirer --port "$ACQUIRER_PORT" --latency-ms "$LATENCY_MS" \
    --dedup on > "$RAW/acquirer.log" 2>&1 &
  ACQUIRER_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ACQUIRER_PORT/health" 2>/dev/null && return 0
    kill -0 "$ACQUIRER_PID" 2>/dev/null || { ACQUIRER_PROBLEM="it exited at start-up (see $RAW/acquirer.log)"; return 1; }
    sleep 0.5
  done
  ACQUIRER_PROBLEM="it did not answer GET /health within 30 s (see $RAW/acquirer.log)"
  return 1
}

LATENCY_SCENARIO="fresh-latency${LATENCY_MS}ms"
# A charge holds one of the connector's connections for the acquirer's whole answer time: the
# default 256 carry 256 / 50 ms = 5,120 charges/s, far more than 32 connections can ask for
# (32 / 50 ms = 640/s); with more than 256 HTTP connections, as many.
PROVIDER_CONNECTIONS=$(( CONNECTIONS > 256 ? (CONNECTIONS < 4096 ? CONNECTIONS : 4096) : 256 ))
if start_acquirer; then
  start_gateway latency IDEMGATE_PROVIDER=http IDEMGATE_PROVIDER_URL="http://127.0.0.1:$ACQUIRER_PORT" \
    IDEMGATE_PROVIDER_MAX_CONNECTIONS="$PROVIDER_CONNECTIONS" || true  # if not, its runs are skipped, each a failed step
  warm_up "$(url)" latency
  run_wrk "$LATENCY_SCENARIO" gateway "$(url)" fresh "latency-$STAMP"
  run_open "$LATENCY_SCENARIO" gateway "$BASE" fresh --key-prefix "latency-open-$STAMP"
  gateway_memory latency
  stop_gateway
  # What the acquirer saw, warm-up included: the charges did go over the network.
  if kill -0 "$ACQUIRER_PID" 2>/dev/null; then
    ACQUIRER_REQUESTS="$(curl -s --max-time 30 "http://127.0.0.1:$ACQUIRER_PORT/charges" | grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2 || true)"
    fact acquirer "standalone (idemgate acquirer), port $ACQUIRER_PORT, $LATENCY_MS ms per charge: ${ACQUIRER_REQUESTS:-n/a} charge requests from the latency gateway (warm-up included)"
  else
    fact acquirer "standalone (idemgate acquirer), port $ACQUIRER_PORT, $LATENCY_MS ms per charge: exited during the run (see $RAW/acquirer.log)"
  fi
else
  fact acquirer "did not start: $ACQUIRER_PROBLEM"
  step_failed "$LATENCY_SCENARIO" "skipped: the standalone acquirer did not start: $ACQUIRER_PROBLEM"
fi
stop_pid "$ACQUIRER_PID"
ACQUIRER_PID=""

# ---------------------------------------------------------------------------------------------
# Baselines, same machine, same invocation (the bare Vert.x endpoint ran beside the main gateway).

say "pgbench: the gateway's own SQL (CLAIM + COMPLETE, extracted from IdempotencyStore.java), $CONNECTIONS clients"
BENCH_TABLES=1
psql_bench -f "$ROOT/bench/pgbench/schema.sql" > /dev/null \
  || { BENCH_TABLES=0; fact pgbench "n/a: could not create the bench tables (bench/pgbench/schema.sql)"
       step_failed pgbench "could not create the bench tables (bench/pgbench/schema.sql): no pgbench baseline"; }
# The gateway's SQL runs with the planner settings of the gateway's request pool
# (Postgres.REQUEST_PATH_PLANNING, read from the Java source like the statements): a generic plan
# per statement and index paths only. Without them pgbench would time other plans than the gateway's.
# If the statements or the settings changed shape, say so and go on: the other baselines still stand.
if [[ $BENCH_TABLES == 0 ]]; then
  :
elif GATEWAY_PLANNING="$("$ROOT/bench/pgbench/gateway-sql.sh" --pgoptions 2> "$RAW/gateway-sql.err")" \
    && "$ROOT/bench/pgbench/gateway-sql.sh" > "$RAW/gateway-sql.pgbench" 2> "$RAW/gateway-sql.err"; then
  fact pg_gateway_sql_planning "PGOPTIONS $GATEWAY_PLANNING (the request pool's Postgres.REQUEST_PATH_PLANNING)"
  run_pgbench pg-gateway-sql "$RAW/gateway-sql.pgbench" \
    "CLAIM + COMPLETE, one payment per statement (the gateway groups them), one commit each; the request pool's planner settings" \
    1 "" "$GATEWAY_PLANNING"
  # The same SQL grouped, with nothing but PostgreSQL and pgbench on the machine: the most the
  # database gives the gateway's SQL, before HTTP, Redis and the load generator take their share of
  # the cores. Throughput counts payments; latency is per CLAIM + COMPLETE pair.
  say "pgbench: the gateway's own SQL grouped, $SQL_GROUP payments per statement, $CONNECTIONS clients"
  if "$ROOT/bench/pgbench/gateway-sql.sh" --group "$SQL_GROUP" > "$RAW/gateway-sql-grouped.pgbench" 2>> "$RAW/gateway-sql.err"; then
    run_pgbench pg-gateway-sql-grouped "$RAW/gateway-sql-grouped.pgbench" \
      "CLAIM + COMPLETE of $SQL_GROUP payments per statement, one commit each; latency per pair of statements; the request pool's planner settings" \
      "$SQL_GROUP" "" "$GATEWAY_PLANNING"
  else
    step_failed pg-gateway-sql-grouped-pgbench "gateway-sql.sh --group $SQL_GROUP failed: $(tail -1 "$RAW/gateway-sql.err")"
  fi
else
  cat "$RAW/gateway-sql.err" >&2
  fact pg_gateway_sql "n/a: $(head -1 "$RAW/gateway-sql.err")"
  for step in pg-gateway-sql-pgbench pg-gateway-sql-grouped-pgbench; do
    step_failed "$step" "bench/pgbench/gateway-sql.sh failed: $(head -1 "$RAW/gateway-sql.err")"
  done
fi
say "pgbench: naive per-payment SQL (INSERT claim + UPDATE completion), $CONNECTIONS clients"
[[ $BENCH_TABLES == 0 ]] || run_pgbench pg-naive "$ROOT/bench/pgbench/naive.pgbench" "INSERT + UPDATE per payment, one commit each"
# The CPU a new payment may cost, all processes together, for the fresh-key target (2.0x the
# naive SQL) to be reachable on this machine; compare with fresh_cpu_per_request.
# The naive figure the target is read against: the median of the rounds in turn (the lower middle,
# as the report takes it), or the single run where there are no rounds.
NAIVE_THROUGHPUT="$(grep '"scenario":"pg-naive-in-turn"' "$RESULTS" | grep -o '"throughput":[0-9.]*' | cut -d: -f2 \
  | sort -g | awk '{ v[NR] = $1 } END { if (NR > 0) print v[int((NR + 1) / 2)] }' || true)"
NAIVE_SOURCE="the median of the pg-naive-in-turn rounds"
if [[ -z $NAIVE_THROUGHPUT ]]; then
  NAIVE_THROUGHPUT="$(grep '"scenario":"pg-naive"' "$RESULTS" | grep -o '"throughput":[0-9.]*' | head -1 | cut -d: -f2 || true)"
  NAIVE_SOURCE="the pg-naive run"
fi
fact cpu_budget_per_payment_at_target "$(awk -v cpus="$(nproc)" -v naive="${NAIVE_THROUGHPUT:-0}" -v source="$NAIVE_SOURCE" 'BEGIN {
  if (naive > 0) printf "%d cores / (2.0 x %.0f naive payments/s, %s) = %.0f us of CPU per payment for everything", cpus, naive, source, cpus * 1e6 / (2 * naive)
  else print "n/a: no pg-naive figure" }')"
# What the rounds leave the gateway: everything else a new payment cost in each round in turn
# (PostgreSQL, Redis and the rest: the load generator, the kernel), and the ratio a gateway costing
# no CPU at all would reach if that work stayed the same per payment and took every core.
zero_cost_gateway() { # meta-file cores naive-payments/s -> the fact's text
  awk -v cores="$2" -v naive="$3" '
    # The rest can be negative: under steal the times of the processes run over the busy time by
    # the clock (20261202T123450Z: -161 us). PostgreSQL + Redis + rest is still the busy time less
    # that of the gateway, the figure wanted; before, such a round made the whole fact n/a.
    # (No apostrophes in here: this program is in single quotes.)
    function figure(text, label,   at) { # the whole number, maybe negative, after ", label " ("" if none)
      at = index(text, ", " label " "); if (at == 0) return ""
      text = substr(text, at + length(label) + 3); return match(text, /^-?[0-9]+/) ? substr(text, 1, RLENGTH) : "" }
    /^fresh_in_turn_cpu_per_request_round[0-9]+=gateway / {
      pg = figure($0, "postgres"); redis = figure($0, "redis"); rest = figure($0, "rest (load generator and others)")
      if (pg == "" || redis == "" || rest == "") { missing = 1; next }
      used = used (used == "" ? "" : ", ") (pg + redis + rest)
      bound = bound (bound == "" ? "" : ", ") sprintf("%.2fx", cores * 1e6 / ((pg + redis + rest) * naive)) }
    END {
      if (missing || used == "" || naive <= 0) print "n/a: no rounds in turn with PostgreSQL and Redis on this machine"
      else printf "PostgreSQL, Redis and the rest used %s us per new payment in the rounds in turn (the budget for everything: %.0f us); a gateway costing no CPU would reach at most %s the naive SQL (%.0f/s), that work staying the same per payment\n", used, cores * 1e6 / (2 * naive), bound, naive }' "$1"
}
fact zero_cost_gateway_at_target "$(zero_cost_gateway "$META" "$(nproc)" "${NAIVE_THROUGHPUT:-0}")"
# The naive SQL at other client counts: its limit is where it peaks, which is not always at
# --connections. pgbench needs a server connection per client, so counts the server cannot take
# are skipped (the gateway needs no more than its pool whatever its HTTP connections).
MAX_CLIENTS="$(( $(psql_bench -Atc "SHOW max_connections" 2>/dev/null || echo 0) - 5 ))"
for clients in $SWEEP_CLIENTS; do
  [[ $BENCH_TABLES == 0 ]] && break
  if (( clients > MAX_CLIENTS )); then
    fact "pg_naive_c$clients" "n/a: pgbench at $clients clients, the server takes $MAX_CLIENTS at most (max_connections less 5)"
    continue
  fi
  say "pgbench: naive per-payment SQL, $clients clients"
  psql_bench -c "TRUNCATE idemgate_bench.naive_keys" > /dev/null 2>&1 || true  # each run from an empty table, as the first
  run_pgbench pg-naive-concurrency "$ROOT/bench/pgbench/naive.pgbench" "INSERT + UPDATE per payment, one commit each" 1 "$clients"
done
psql_bench -c "TRUNCATE idemgate_bench.naive_keys" > /dev/null 2>&1 || true

say "pgbench: one durable commit at a time (1 client), what a commit costs here"
if ( cd "$RAW" && timeout 60 pgbench -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -n -M prepared -c 1 -T 5 \
    -f "$ROOT/bench/pgbench/commit.pgbench" -l --log-prefix pgbench-pg-commit "$PG_DB" ) > "$RAW/pg-commit-pgbench.txt" 2>&1; then
  record --tool pgbench --input "$RAW/pg-commit-pgbench.txt" --log "$RAW/pgbench-pg-commit" --scenario pg-commit \
    --target-name postgres --protocol sql --connections 1 --note "an upsert of one row per transaction: one commit waiting for its WAL flush" \
    || step_failed pg-commit-pgbench "could not read pgbench's output (see $RAW/pg-commit-pgbench.txt)"
else
  step_failed pg-commit-pgbench "pgbench failed (see $RAW/pg-commit-pgbench.txt)"
fi

say "redis-benchmark: the gate's SET NX GET PX, random keys, $CONNECTIONS clients"
GATE_VALUE="P|5d41402abc4b2a76b9719d911017c592ae2d3b7c1e4f5a6b7c8d9e0f1a2b3c4d|$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
REDIS_REQUESTS=$(( DURATION_S * 20000 ))
if timeout $((DURATION_S * 10 + 60)) redis-benchmark -h "$REDIS_HOST" -p "$REDIS_PORT" -c "$CONNECTIONS" -n "$REDIS_REQUESTS" \
    -r 1000000000 --csv SET "idemgate-bench:{demo:__rand_int__}" "$GATE_VALUE" NX GET PX 30000 > "$RAW/redis-benchmark.csv" 2>&1; then
  record --tool redis-benchmark --input "$RAW/redis-benchmark.csv" --scenario redis-gate --target-name redis \
    --protocol resp --connections "$CONNECTIONS" --note "$REDIS_REQUESTS requests; keys expire after 30 s; no p99.9 from redis-benchmark" \
    || step_failed redis-gate-redis-benchmark "could not read redis-benchmark's output (see $RAW/redis-benchmark.csv)"
else
  step_failed redis-gate-redis-benchmark "redis-benchmark failed (see $RAW/redis-benchmark.csv)"
fi

# ---------------------------------------------------------------------------------------------

write_report || die "the report could not be written"
[[ $STORM_OK == 1 ]] || die "the retry storm did not end with exactly one charge per key: see $RAW/storm.txt"
(( ${#FAILED_STEPS[@]} == 0 )) || exit 1

# shellcheck shell=bash
# Shell pieces that bench/run.sh and bench/soak.sh share; sourced, not run. A script that sources it
# defines die() and sets PG_HOST, PG_PORT, PG_USER, PG_DB and MANAGEMENT_PORT first.

# The load generator shares the cores with what it measures. A small fixed heap and the serial
# collector keep its threads few, and C1 only (TieredStopAtLevel=1) gets it to full speed within the
# warm-up with little compiler CPU: against the bare endpoint at 1,500/s on the busy 2-core machine,
# p99 went from 73-1,163 ms with C2 to 8-19 ms with C1 only.
# shellcheck disable=SC2034  # used by the scripts that source this file
LOADGEN_JVM_OPTIONS=(-Xms256m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

seconds_of() { # 500ms | 10s | 2m | 1h | 10 -> whole seconds (milliseconds rounded up)
  local d="$1"
  case "$d" in
    *ms) echo $(( (${d%ms} + 999) / 1000 )) ;;
    *s) echo "${d%s}" ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *h) echo $(( ${d%h} * 3600 )) ;;
    *) echo "$d" ;;
  esac
}

stop_pid() { # pid: SIGTERM, then SIGKILL after 15 s
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
}

ensure_database() { # creates $PG_DB if it is missing
  if [[ "$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE $PG_DB" || die "cannot create database $PG_DB"
  fi
}

wait_until_ready() { # pid log label: waits up to 60 s for the gateway's readiness; 1 with NOT_READY saying why
  local pid="$1" log="$2" label="$3"
  NOT_READY=""
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MANAGEMENT_PORT/health/ready" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -5 "$log" >&2
      NOT_READY="the gateway ($label) exited at start-up, see $log"
      return 1
    fi
    sleep 0.5
  done
  NOT_READY="the gateway ($label) was not ready within 60 s, see $log"
  return 1
}

warnings_by_logger() { # log -> "count level logger" lines, one per level and logger
  # The log is JSON lines whose first fields are timestamp, level, threadName and loggerName, in that
  # order (logback.xml).
  sed -n 's/^{"timestamp":[0-9]*,"level":"\(WARN\|ERROR\)","threadName":"[^"]*","loggerName":"\([^"]*\)".*/\1 \2/p' "$1" \
    | sort | uniq -c
}

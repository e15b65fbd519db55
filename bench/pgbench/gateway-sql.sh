#!/usr/bin/env bash
# Writes a pgbench script that runs, per transaction, the SQL the gateway issues for new payments:
# the CLAIM statement, then the COMPLETE statement, each its own autocommit, as IdempotencyStore
# runs them, with one payment per statement (the gateway groups the payments waiting at the time,
# about 8 per statement from 32 connections) or --group G payments per statement. The SQL text is extracted from the Java source on every run, so the
# baseline follows the code; only the parameter values below are the bench's.
#
#   bench/pgbench/gateway-sql.sh [--group G] [path/to/IdempotencyStore.java] > gateway-sql.pgbench
#
# How it extracts: the text block of `String CLAIM = """` (resp. COMPLETE) up to the closing `"""`.
# Then `idemgate.` becomes `idemgate_bench.` (the bench copies of the tables), and each `$n`
# becomes the value listed below for that position, the one the gateway binds for a typical new
# payment (Tuple order in IdempotencyStore.claim / complete). If the number of parameters of a
# statement changes (a column added, say), this script stops with a clear message instead of
# measuring something else: update the value lists to the new Tuple order.
# The stored response body is a pgbench variable: run with -D response_body="$(cat response-body.json)".
#
#   bench/pgbench/gateway-sql.sh --pgoptions [path/to/Postgres.java]
#
# prints instead the session settings of the gateway's request pool (Postgres.REQUEST_PATH_PLANNING:
# a generic plan per statement, no whole-table scans, no hash or merge joins) as PGOPTIONS
# ("-c name=value ..."), read from the Java source on every run like the SQL, so that pgbench plans
# the statements as the gateway's pool does.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true  # bash 5.2: keep "&" literal in replacements

if [[ "${1:-}" == --pgoptions ]]; then
  pg_src="${2:-$(dirname "$0")/../../src/main/java/dev/idemgate/storage/Postgres.java}"
  [[ -r "$pg_src" ]] || { echo "gateway-sql.sh: cannot read $pg_src" >&2; exit 1; }
  # The quoted strings of `REQUEST_PATH_PLANNING = Map.of(` up to its `);`, taken in pairs.
  options="$(awk '
    index($0, "REQUEST_PATH_PLANNING = Map.of(") { on = 1 }
    on { line = $0
         while (match(line, /"[^"]*"/)) { s[n++] = substr(line, RSTART + 1, RLENGTH - 2); line = substr(line, RSTART + RLENGTH) }
         if (index($0, ");")) exit }
    END { if (n == 0 || n % 2) exit 1
          for (i = 0; i < n; i += 2) printf "%s-c %s=%s", (i ? " " : ""), s[i], s[i + 1] }' "$pg_src")" \
    || { echo "gateway-sql.sh: no 'REQUEST_PATH_PLANNING = Map.of(\"name\", \"value\", ...)' in $pg_src" >&2; exit 1; }
  [[ "$options" =~ ^(-c\ [a-z_]+=[A-Za-z0-9_.]+\ ?)+$ ]] \
    || { echo "gateway-sql.sh: REQUEST_PATH_PLANNING in $pg_src is not a list of plain name/value pairs: $options" >&2; exit 1; }
  echo "$options"
  exit 0
fi

# The gateway groups concurrent payments into one statement over unnest() arrays. By default the
# bench runs the same statements with one payment per statement (arrays of one), so pgbench shows
# what the gateway's SQL costs without the grouping. With --group G each statement carries G
# payments (keys <random>-1 .. <random>-G, arrays built in SQL): what PostgreSQL alone can do with
# the gateway's SQL when it is grouped, with nothing else on the machine.
group=1
if [[ "${1:-}" == --group ]]; then
  group="${2:?--group needs a number of payments per statement}"
  [[ "$group" =~ ^[1-9][0-9]*$ ]] || { echo "gateway-sql.sh: --group must be a positive number, not '$group'" >&2; exit 1; }
  shift 2
fi
src="${1:-$(dirname "$0")/../../src/main/java/dev/idemgate/idempotency/IdempotencyStore.java}"
[[ -r "$src" ]] || { echo "gateway-sql.sh: cannot read $src" >&2; exit 1; }

fingerprint="'5d41402abc4b2a76b9719d911017c592ae2d3b7c1e4f5a6b7c8d9e0f1a2b3c4d'"

arr() { # expression type -> an array of $group values of that expression (g numbers the payments)
  if ((group == 1)); then echo "ARRAY[$1]::$2[]"; else echo "ARRAY(SELECT ($1)::$2 FROM generate_series(1, $group) g)"; fi
}
if ((group == 1)); then key=":key::text"; else key="(:key::text || '-' || g)"; fi

# $1..$12 of CLAIM: lease ms, then arrays of merchant, key, fingerprint, payment id, first provider
# key, amount, currency, merchant reference, description, metadata; then provider id.
claim_values=("30000" "$(arr "'demo'" text)" "$(arr "$key" text)" "$(arr "$fingerprint" text)"
  "$(arr "'pay_' || $key" text)" "$(arr "'pk_' || $key" text)" "$(arr 1999 bigint)" "$(arr "'EUR'" text)"
  "$(arr "'order-' || $key" text)" "$(arr NULL text)" "$(arr NULL text)" "'simulator'")
# $1..$18 of COMPLETE: arrays of merchant, key, epoch, payment id, state, response status, response
# body, key TTL ms, payment status, provider, provider reference, decline code, next inquiry ms,
# the expiry the answer told, the pending body and next inquiry ms written instead if the charge id
# is already another payment's (a body the size of the stored one); then the acquirer's ledger
# names (one array for the statement); then the charge ids to check (each succeeded payment's, the
# look-up that takes their locks: V11's charge_holders, copied into the bench schema by schema.sql).
complete_values=("$(arr "'demo'" text)" "$(arr "$key" text)" "$(arr 1 int)" "$(arr "'pay_' || $key" text)"
  "$(arr "'COMPLETED'" text)" "$(arr 201 int)" "$(arr ":response_body::text" text)"
  "$(arr 86400000 bigint)" "$(arr "'succeeded'" text)" "$(arr "'simulator'" text)"
  "$(arr "'sim_ch_' || $key" text)" "$(arr NULL text)" "$(arr NULL bigint)"
  "$(arr "now() + interval '24 hours'" timestamptz)" "$(arr ":response_body::text" text)" "$(arr 5000 bigint)"
  "ARRAY['simulator']::text[]" "$(arr "'sim_ch_' || $key" text)")

extract() { # name -> the SQL text of the Java text block `String name = """ ... """`
  awk -v name="$1" '
    index($0, "String " name " = \"\"\"") { on = 1; next }
    on { if (index($0, "\"\"\"")) { sub(/""".*/, ""); print; exit } print }' "$src"
}

bind() { # name values... -> the statement with $n replaced, one pgbench command ending in ';'
  local name="$1"; shift
  local values=("$@") sql count
  sql="$(extract "$name")"
  [[ -n "$sql" ]] || { echo "gateway-sql.sh: no text block 'String $name = \"\"\"' in $src" >&2; exit 1; }
  count="$(grep -o '\$[0-9]\+' <<<"$sql" | sort -u | wc -l)"
  if [[ "$count" -ne "${#values[@]}" ]]; then
    echo "gateway-sql.sh: $name now has $count parameters, the bench binds ${#values[@]}; update the values in $0" >&2
    exit 1
  fi
  sql="$(sed 's/\bidemgate\./idemgate_bench./g' <<<"$sql")"
  # Highest position first, so that $1 does not eat the start of $12.
  for ((i = ${#values[@]}; i >= 1; i--)); do
    local v="${values[$((i - 1))]}"
    sql="${sql//\$$i/($v)}"
  done
  printf '%s;\n' "$sql"
}

echo "-- Generated by bench/pgbench/gateway-sql.sh from IdempotencyStore.java: CLAIM then COMPLETE, $group payment(s) each."
echo '\set key random(1, 9000000000000000000)'
bind CLAIM "${claim_values[@]}"
bind COMPLETE "${complete_values[@]}"

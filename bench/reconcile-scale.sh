#!/usr/bin/env bash
# Reconciliation at scale: a ROWS-payment ledger (default 1,000,000) and the settlement file for it
# (with discrepancies planted), reconciled by the CLI with the JVM capped at 512 MiB of heap and
# metaspace. Prints the time and peak RSS of the reconcile run. Uses its own database,
# idemgate_recon_bench, so the shared ledger is never flooded.
#
#   bash bench/reconcile-scale.sh            # 1,000,000 rows
#   ROWS=100000 bash bench/reconcile-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB=idemgate_recon_bench
WORK=${WORK:-$(mktemp -d /tmp/idemgate-recon-bench.XXXXXX)}
export IDEMGATE_PG_URL="postgresql://$PGUSER@$PGHOST:$PGPORT/$DB"
psql_bench() { psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }

[ -f target/idemgate.jar ] || mvn -B -q package -DskipTests
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

if ! psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -q -c "CREATE DATABASE $DB"
fi
java -jar target/idemgate.jar migrate >/dev/null

echo "bench: generating a ledger of $ROWS payments in $DB"
start=$(date +%s)
psql_bench <<SQL
TRUNCATE idemgate.payments, idemgate.idempotency_keys, idemgate.reconciliation_runs CASCADE;
-- 1,000 merchants, 30 days of payments ending 3 days ago; 97% succeeded, 2% declined, 1% pending.
INSERT INTO idemgate.payments (id, merchant_id, provider_key, amount, currency, status, provider,
  provider_reference, decline_code, created_at)
SELECT 'pay_bench_' || i,
       'merchant_' || (i % 1000),
       encode(sha256(('bench:' || i)::bytea), 'hex'),
       100 + (hashint4(i)::bigint & 1048575) % 200000,
       (ARRAY['EUR','EUR','EUR','EUR','EUR','USD','USD','GBP','JPY','CHF'])[1 + (i % 10)],
       CASE WHEN i % 100 < 97 THEN 'succeeded' WHEN i % 100 < 99 THEN 'declined' ELSE 'pending' END,
       'simulator',
       CASE WHEN i % 100 < 99 THEN 'ch_bench_' || i END,
       CASE WHEN i % 100 BETWEEN 97 AND 98 THEN 'card_declined' END,
       now() - interval '33 days' + (i::double precision / $ROWS) * interval '30 days'
FROM generate_series(1, $ROWS) AS i;
-- A few hundred claims stuck in PROCESSING and PENDING past their lease.
INSERT INTO idemgate.idempotency_keys (merchant_id, idempotency_key, fingerprint, state, epoch, generation,
  payment_id, provider_key, lease_expires_at, amount, currency, created_at)
SELECT 'merchant_' || (i % 1000), 'stuck-' || i, 'bench', 'PROCESSING', 1, 1, 'pay_stuck_' || i,
       encode(sha256(('stuck:' || i)::bytea), 'hex'), now() - interval '10 days', 1000 + i, 'EUR',
       now() - interval '10 days' - i * interval '1 minute'
FROM generate_series(1, GREATEST($ROWS / 5000, 1)) AS i;
ANALYZE idemgate.idempotency_keys;
SQL
# A ledger is read long after it was written: set hint bits and the visibility map now, as
# autovacuum would have, so that the measured run does not pay for this bulk insert.
psql_bench -c "VACUUM (ANALYZE) idemgate.payments" -c "CHECKPOINT"
echo "bench: ledger ready in $(( $(date +%s) - start )) s"

start=$(date +%s)
java -jar target/idemgate.jar settlement-demo --plant --out "$WORK/settlement.csv"
echo "bench: settlement file $(wc -l < "$WORK/settlement.csv") lines, $(du -h "$WORK/settlement.csv" | cut -f1), written in $(( $(date +%s) - start )) s"

# The measured run: heap and metaspace capped so the whole JVM stays under 512 MiB.
/usr/bin/time -f "%e %M" -o "$WORK/time.txt" \
  java -Xmx256m -XX:MaxMetaspaceSize=96m -XX:+UseSerialGC -jar target/idemgate.jar reconcile \
  --settlement "$WORK/settlement.csv" --format json --out "$WORK/report.json" 2> "$WORK/reconcile.err"
read -r seconds rss_kib < "$WORK/time.txt"
cat "$WORK/reconcile.err"
echo
echo "reconcile-scale: ledger $ROWS payments, settlement $(( $(wc -l < "$WORK/settlement.csv") - 1 )) rows:" \
  "${seconds} s, peak RSS $(( rss_kib / 1024 )) MiB (report: $WORK/report.json, $(du -h "$WORK/report.json" | cut -f1))"

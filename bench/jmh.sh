#!/usr/bin/env bash
# JMH microbenchmarks of the gateway's hot pure functions, from a fresh clone:
#
#   bench/jmh.sh                       short run: 1 fork, 2 warm-ups, 3 iterations of 1 s each
#   bench/jmh.sh -f 3 -wi 5 -i 10      any JMH options replace the short defaults
#   bench/jmh.sh Fingerprint           a regexp picks benchmarks, as with JMH itself
#
# Builds the gateway jar if missing (or with BUILD=1), installs it into the local Maven repository
# as dev.idemgate:idemgate-under-bench (the module bench/jmh depends on it, so the root pom stays
# as it is), builds bench/jmh/target/benchmarks.jar and runs it. Results also go to
# bench/results/jmh-<timestamp>.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${BUILD:-0}" == 1 || ! -f target/idemgate.jar ]]; then
  mvn -B -q package -DskipTests
fi
mvn -B -q -f bench/jmh/pom.xml install:install-file -Dfile="$ROOT/target/idemgate.jar" \
  -DgroupId=dev.idemgate -DartifactId=idemgate-under-bench -Dversion=0.1.0-SNAPSHOT -Dpackaging=jar
mvn -B -q -f bench/jmh/pom.xml package

mkdir -p bench/results
out="bench/results/jmh-$(date -u +%Y%m%dT%H%M%SZ).json"
if [[ $# -eq 0 ]]; then
  set -- -f 1 -wi 2 -i 3 -w 1s -r 1s
fi
java -jar bench/jmh/target/benchmarks.jar -rf json -rff "$out" "$@"
echo "written: $out" >&2

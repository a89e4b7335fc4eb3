#!/usr/bin/env bash
# bench/e2e.sh: the end-to-end benchmark (bench/bench_e2e.c) with everything it
# needs: a model in the registry (trained once by `catwire demo` when absent),
# a real broker (CW_BENCH_BROKERS, or one started here with deploy/kafka/kafka.sh
# on port 9192 and stopped afterwards, when Java is available), and the Python
# baseline worker (bench/python_worker.py) when a python3 with confluent_kafka,
# msgpack and numpy exists (Debian: python3-confluent-kafka python3-msgpack
# python3-numpy).
#
#   bench/e2e.sh [bench_e2e options...]     e.g. --articles 50000 --sizes 64
#
# Environment: CW_BUILD_DIR (default build), CATWIRE_REGISTRY (default
# registry), CATWIRE_DATA (default ../shared/data/ag_news), CW_BENCH_BROKERS
# (a real cluster; skips starting one), CW_BENCH_NO_KAFKA=1 (embedded only),
# CW_BENCH_PYTHON (interpreter for the baseline; default: the first python3 on
# PATH, then /usr/bin/python3, that has the three modules; "none" skips the
# baseline, and the ratio is then to the issue's quoted 15,000 articles/s).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${CW_BUILD_DIR:-build}
export CATWIRE_REGISTRY=${CATWIRE_REGISTRY:-registry}
export CATWIRE_DATA=${CATWIRE_DATA:-../shared/data/ag_news}

for exe in "$build/worker/catwire" "$build/bench/bench_e2e"; do
    if [[ ! -x $exe ]]; then
        echo "e2e.sh: $exe is missing; run deploy/setup.sh first" >&2
        exit 1
    fi
done

# A model to serve: the demo trains and publishes one when the registry has none.
if [[ ! -e $CATWIRE_REGISTRY/news ]]; then
    echo "e2e.sh: no model 'news' in $CATWIRE_REGISTRY; training one with catwire demo" >&2
    "$build/worker/catwire" demo --articles 1000 --samples 0 >&2
fi

# The Python baseline.
py=${CW_BENCH_PYTHON:-}
if [[ $py == none ]]; then
    py=
    echo "e2e.sh: CW_BENCH_PYTHON=none: no Python worker; the Python figure will be the issue's quoted one" >&2
elif [[ -z $py ]]; then
    for cand in "$(command -v python3 || true)" /usr/bin/python3; do
        if [[ -n $cand ]] && "$cand" -c 'import confluent_kafka, msgpack, numpy' 2>/dev/null; then
            py=$cand
            break
        fi
    done
fi
args=()
if [[ -n $py ]]; then
    args+=(--python "$py $root/bench/python_worker.py")
elif [[ ${CW_BENCH_PYTHON:-} != none ]]; then
    echo "e2e.sh: no python3 with confluent_kafka, msgpack and numpy: the Python figure will be the issue's quoted one" >&2
fi

# A real broker.
started_kafka=0
if [[ -z ${CW_BENCH_BROKERS:-} && ${CW_BENCH_NO_KAFKA:-0} != 1 ]]; then
    if command -v java >/dev/null && [[ -x deploy/kafka/kafka.sh ]]; then
        port=${CW_BENCH_KAFKA_PORT:-9192}
        if KAFKA_RUN_DIR=${TMPDIR:-/tmp}/catwire-bench-kafka deploy/kafka/kafka.sh start --port "$port" --clean >&2; then
            started_kafka=1
            export CW_BENCH_BROKERS=127.0.0.1:$port
        else
            echo "e2e.sh: could not start a Kafka broker; real-broker rows are skipped" >&2
        fi
    else
        echo "e2e.sh: no java (or deploy/kafka/kafka.sh): real-broker rows are skipped" >&2
    fi
fi
stop_kafka() {
    if [[ $started_kafka == 1 ]]; then
        KAFKA_RUN_DIR=${TMPDIR:-/tmp}/catwire-bench-kafka deploy/kafka/kafka.sh stop >&2 || true
    fi
}
trap stop_kafka EXIT

"$build/bench/bench_e2e" "${args[@]}" "$@"

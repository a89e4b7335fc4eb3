#!/usr/bin/env bash
# catwire: the test command. Sets the machine up and builds (deploy/setup.sh),
# starts a real single-node Kafka broker on 127.0.0.1 (deploy/kafka/kafka.sh),
# runs every ctest test with CW_TEST_BROKERS pointing at that broker, stops the
# broker again (also when something fails or the run is interrupted) and exits
# with ctest's status.
#
#   deploy/test.sh [--no-setup] [--no-kafka] [CTEST_ARGS...]
#
#   --no-setup   skip deploy/setup.sh (use the existing ./build as it is)
#   --no-kafka   do not start a broker; tests that need one skip themselves
#   CTEST_ARGS   passed to ctest, e.g. -L unit, -R worker, -V
#
# Environment: CW_KAFKA_PORT (default 9092; the controller uses the next port),
# CW_BUILD_DIR (default build), CW_TEST_JOBS (ctest -j, default 2), and
# everything deploy/setup.sh reads (CW_WERROR, CW_CUDA, CW_SANITIZE, CW_JOBS).
# A broker that is already running on that port (started by hand with
# 'deploy/kafka/kafka.sh start') is used as it is and left running.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

setup=1
kafka=1
ctest_args=()
for a in "$@"; do
    case $a in
    --no-setup) setup=0 ;;
    --no-kafka) kafka=0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) ctest_args+=("$a") ;;
    esac
done

port=${CW_KAFKA_PORT:-9092}
build_dir=${CW_BUILD_DIR:-build}
kafka_sh="$root/deploy/kafka/kafka.sh"
t_start=$SECONDS
step=0
steps=$((1 + setup + kafka))

banner() {
    step=$((step + 1))
    printf '\n==================== [%d/%d] %s  (t=%ds)\n' "$step" "$steps" "$*" "$((SECONDS - t_start))"
}

stop_broker=0
ctest_pid=
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $ctest_pid ]] && kill -0 "$ctest_pid" 2>/dev/null; then
        echo "test.sh: interrupted: stopping ctest and its tests (process group $ctest_pid)"
        kill -TERM -- "-$ctest_pid" 2>/dev/null || true
        wait "$ctest_pid" 2>/dev/null || true
    fi
    if ((stop_broker)); then
        printf '\n==================== stopping the Kafka broker  (t=%ds)\n' "$((SECONDS - t_start))"
        "$kafka_sh" stop || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((setup)); then
    banner "set up the machine and build (deploy/setup.sh)"
    CW_BUILD_DIR=$build_dir "$root/deploy/setup.sh"
fi
[[ -f $build_dir/CTestTestfile.cmake ]] || {
    echo "test.sh: $build_dir is not a configured build directory; run deploy/setup.sh" >&2
    exit 1
}

if [[ -d $root/../shared/data/ag_news ]]; then
    echo "test.sh: data: $(cd "$root/../shared/data/ag_news" && pwd)"
else
    echo "test.sh: warning: ../shared/data/ag_news not found beside the repository; tests that need it will fail or skip"
fi

if ((kafka)); then
    banner "start a real Kafka broker on 127.0.0.1:$port (deploy/kafka/kafka.sh)"
    if "$kafka_sh" status >/dev/null 2>&1 && [[ $(cat "$root/deploy/kafka/run/port" 2>/dev/null) == "$port" ]]; then
        echo "test.sh: using the broker that is already running on 127.0.0.1:$port (left running afterwards)"
    else
        "$kafka_sh" fetch
        stop_broker=1
        "$kafka_sh" start --clean --port "$port"
    fi
    export CW_TEST_BROKERS="127.0.0.1:$port"
    echo "test.sh: CW_TEST_BROKERS=$CW_TEST_BROKERS"
else
    unset CW_TEST_BROKERS
    echo "test.sh: --no-kafka: CW_TEST_BROKERS unset, tests that need a real broker skip"
fi

banner "run the tests (ctest)"
# ctest runs as a background job so that a SIGTERM or SIGINT sent to this
# script is handled at once (bash defers traps while a foreground child runs),
# in a process group of its own so that the handler stops the tests with it.
setsid ctest --test-dir "$build_dir" --output-on-failure --no-tests=error \
    -j"${CW_TEST_JOBS:-2}" "${ctest_args[@]}" </dev/null &
ctest_pid=$!
rc=0
wait "$ctest_pid" || rc=$?
ctest_pid=
# ctest reports a skipped test (exit 77) without its output; print the
# reason each one gave, so a skip never goes by unexplained.
skips=$(grep -hiE '^SKIP|: skipped: ' "$build_dir/Testing/Temporary/LastTest.log" 2>/dev/null | sort -u || true)
[[ -n $skips ]] && printf '\ntest.sh: skipped tests said:\n%s\n' "$skips"
printf '\ntest.sh: ctest exited with %d after %d s in all\n' "$rc" "$((SECONDS - t_start))"
exit "$rc"

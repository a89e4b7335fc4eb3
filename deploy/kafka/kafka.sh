#!/usr/bin/env bash
# catwire: run a real single-node Apache Kafka 4.x broker on 127.0.0.1.
#
# The broker is one JVM in KRaft mode, both controller and broker, built from
# the org.apache.kafka:kafka_2.13 jars on Maven Central (see pom.xml). Nothing
# is installed system-wide: the jars go to deploy/kafka/lib/ (and Maven's own
# cache, ~/.m2), the configuration, data and logs to deploy/kafka/run/; both are
# ignored by git.
#
#   kafka.sh fetch                       download the jars (skipped when current)
#   kafka.sh start [--port N] [--clean] [--timeout S]
#                                        format storage if needed, start in the
#                                        background, wait until it serves clients
#   kafka.sh stop [--timeout S]          SIGTERM, wait, SIGKILL after the timeout
#   kafka.sh status                      exit 0 when running, 3 when not
#   kafka.sh log [N]                     last N lines of the broker's log
#
# The client port is 9092 unless --port (or KAFKA_PORT) says otherwise; the
# controller listens on the client port + 1. --clean deletes the broker's data
# (topics, offsets) before it starts. Environment: JAVA_HOME (a JDK 17 or newer;
# default: java on PATH), KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g),
# KAFKA_RUN_DIR (default deploy/kafka/run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib_dir="$here/lib"
run_dir="${KAFKA_RUN_DIR:-$here/run}"
pid_file="$run_dir/kafka.pid"
port_file="$run_dir/port"
out_file="$run_dir/kafka.out"
log_dir="$run_dir/logs"
data_dir="$run_dir/data"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

say() { printf 'kafka.sh: %s\n' "$*"; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# --- helpers -----------------------------------------------------------------

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while process $1 exists and is not a zombie (a zombie's parent may be
# slow to reap it; it no longer holds any port or file).
alive() {
    local state
    state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# The pid of our running broker, or nothing. A pid file whose process is gone,
# or belongs to something else now, is removed.
running_pid() {
    local pid
    [[ -f $pid_file ]] || return 0
    pid=$(<"$pid_file")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; then
        printf '%s\n' "$pid"
    else
        rm -f "$pid_file"
    fi
}

check_java() {
    command -v "$java" >/dev/null 2>&1 ||
        die "no java found ($java); install a JDK 17 or newer (Debian: default-jdk-headless)"
    local ver major
    ver=$("$java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
    major=${ver%%.*}
    [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$ver")
    [[ $major =~ ^[0-9]+$ ]] || die "cannot read the Java version from '$java -version'"
    ((major >= 17)) || die "Kafka 4 needs Java 17 or newer; $java is $ver (set JAVA_HOME)"
}

# The jars are current when lib/.pom.sha256 matches pom.xml.
fetched() {
    [[ -f $lib_dir/.pom.sha256 ]] &&
        [[ $(<"$lib_dir/.pom.sha256") == "$(sha256sum <"$here/pom.xml" | cut -d' ' -f1)" ]] &&
        compgen -G "$lib_dir/kafka_2.13-*.jar" >/dev/null
}

# --- subcommands -------------------------------------------------------------

cmd_fetch() {
    if fetched; then
        say "jars already in $lib_dir"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found; install maven (Debian: maven)"
    local tmp="$lib_dir.tmp.$$" t0=$SECONDS
    rm -rf "$tmp"
    say "fetching the Kafka jars with Maven into $lib_dir"
    mkdir -p "$run_dir"
    # Maven's output goes to run/fetch.log and is shown only when it fails
    # (even with -q it writes colour codes to stdout).
    if ! mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" </dev/null >"$run_dir/fetch.log" 2>&1; then
        rm -rf "$tmp"
        sed 's/\x1b\[[0-9;]*m//g' "$run_dir/fetch.log" >&2
        die "mvn could not resolve deploy/kafka/pom.xml (log: $run_dir/fetch.log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || {
        rm -rf "$tmp"
        die "mvn finished but no kafka_2.13 jar was copied"
    }
    sha256sum <"$here/pom.xml" | cut -d' ' -f1 >"$tmp/.pom.sha256"
    rm -rf "$lib_dir"
    mv "$tmp" "$lib_dir"
    say "fetched $(find "$lib_dir" -name '*.jar' | wc -l) jars in $((SECONDS - t0)) s"
}

cmd_start() {
    local port="${KAFKA_PORT:-9092}" clean=0 timeout=180
    while (($#)); do
        case $1 in
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --port=*) port=${1#*=}; shift ;;
        --clean) clean=1; shift ;;
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        --timeout=*) timeout=${1#*=}; shift ;;
        *) die "start: unknown argument '$1'" ;;
        esac
    done
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65534)); then
        die "bad port '$port' (the controller takes port + 1)"
    fi
    [[ $timeout =~ ^[0-9]+$ ]] || die "bad timeout '$timeout'"
    local cport=$((port + 1)) pid

    pid=$(running_pid)
    if [[ -n $pid ]]; then
        if [[ -f $port_file && $(<"$port_file") == "$port" ]] && port_open "$port"; then
            say "already running (pid $pid) on 127.0.0.1:$port"
            return 0
        fi
        die "a broker is already running (pid $pid, port $(cat "$port_file" 2>/dev/null || echo '?')); run '$0 stop' first"
    fi
    port_open "$port" && die "127.0.0.1:$port is already in use by another program"
    port_open "$cport" && die "127.0.0.1:$cport (controller) is already in use by another program"

    check_java
    fetched || cmd_fetch

    mkdir -p "$run_dir"
    if ((clean)); then
        say "--clean: deleting $data_dir"
        rm -rf "$data_dir"
    fi
    mkdir -p "$log_dir" "$data_dir"
    sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@DATA_DIR@|$data_dir|g" \
        "$here/server.properties.in" >"$run_dir/server.properties"

    local t0=$SECONDS
    if [[ ! -f $data_dir/meta.properties ]]; then
        # A cluster id is 16 random bytes in URL-safe base64 without padding.
        local cluster_id
        cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        say "formatting storage (cluster id $cluster_id)"
        if ! "$java" -Xmx256m -cp "$lib_dir/*" \
            -Dlog4j2.configurationFile="file:$here/log4j2.properties" -Dkafka.logs.dir="$log_dir" \
            kafka.tools.StorageTool format -t "$cluster_id" -c "$run_dir/server.properties" \
            >"$run_dir/format.out" 2>&1 </dev/null; then
            cat "$run_dir/format.out" >&2
            die "formatting the storage failed"
        fi
    fi

    rm -f "$log_dir"/server.log*
    # KAFKA_HEAP_OPTS is a list of JVM options: split it on purpose.
    # shellcheck disable=SC2206
    local heap=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g})
    # setsid: the broker outlives the shell that started it and is not hit by
    # that shell's Ctrl-C; it is stopped with 'kafka.sh stop'.
    setsid "$java" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="file:$here/log4j2.properties" \
        -Dkafka.logs.dir="$log_dir" \
        -cp "$lib_dir/*" kafka.Kafka "$run_dir/server.properties" \
        >"$out_file" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"
    echo "$port" >"$port_file"
    say "starting (pid $pid) on 127.0.0.1:$port, controller on :$cport; log $log_dir/server.log"

    # Ready: the server logged that it started (in KRaft mode that is after the
    # broker was unfenced by the controller) and the client port accepts.
    while :; do
        if ! alive "$pid"; then
            rm -f "$pid_file"
            printf -- '--- %s\n' "$out_file" >&2
            tail -n 30 "$out_file" >&2 || true
            printf -- '--- %s\n' "$log_dir/server.log" >&2
            tail -n 30 "$log_dir/server.log" >&2 || true
            die "the broker exited during start-up"
        fi
        if grep -q 'Kafka Server started' "$log_dir/server.log" 2>/dev/null && port_open "$port"; then
            break
        fi
        if ((SECONDS - t0 >= timeout)); then
            tail -n 30 "$log_dir/server.log" >&2 || true
            cmd_stop
            die "the broker was not ready within $timeout s"
        fi
        sleep 0.25
    done
    say "ready on 127.0.0.1:$port after $((SECONDS - t0)) s"
}

cmd_stop() {
    local timeout=30
    while (($#)); do
        case $1 in
        --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
        --timeout=*) timeout=${1#*=}; shift ;;
        *) die "stop: unknown argument '$1'" ;;
        esac
    done
    local pid t0=$SECONDS
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        say "not running"
        return 0
    fi
    say "stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do
        if ((SECONDS - t0 >= timeout)); then
            say "still running after $timeout s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.25
    done
    # Reap it when it is our child; otherwise wait for it to disappear.
    wait "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
    rm -f "$pid_file"
    say "stopped after $((SECONDS - t0)) s"
}

cmd_status() {
    local pid port
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        say "not running"
        return 3
    fi
    port=$(cat "$port_file" 2>/dev/null || echo 9092)
    if port_open "$port"; then
        say "running (pid $pid) on 127.0.0.1:$port"
    else
        say "process $pid is up but 127.0.0.1:$port does not accept connections (starting or failing; see '$0 log')"
    fi
}

cmd_log() {
    local n=${1:-50}
    tail -n "$n" "$log_dir/server.log"
}

case ${1:-} in
fetch) shift; cmd_fetch "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
status) shift; cmd_status "$@" ;;
log) shift; cmd_log "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac

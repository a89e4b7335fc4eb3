#!/usr/bin/env bash
# catwire: set up a Debian 12 or 13 machine and build the project into ./build.
#
#   deploy/setup.sh             install what is missing (as root), configure, build
#   deploy/setup.sh --deps-only install what is missing, do not build
#   deploy/setup.sh --check     only report what is missing (exit 1 if anything required is)
#
# Idempotent: packages already present are not touched, and apt is not run at
# all when nothing is missing. Run as a normal user it installs nothing and
# prints the apt-get command that would.
#
# Packages: build-essential cmake pkg-config librdkafka-dev libconfig-dev
# libopenblas-dev and msgpack-c (libmsgpack-dev on Debian 12, libmsgpack-c-dev
# on Debian 13); fasttext (the benchmarks compare against it; optional);
# python3-confluent-kafka, python3-msgpack and python3-numpy for
# /usr/bin/python3 (bench/e2e.sh's Python baseline worker; optional);
# python3 with numpy, unless a python3 with numpy is already first on PATH (a
# pyenv interpreter is left alone); a Java runtime 17+ and maven (the Kafka
# broker of deploy/kafka), only when absent.
#
# Environment: CW_WERROR=1 builds with -Werror (CI); CW_CUDA=AUTO|ON|OFF
# (default AUTO: the CUDA backend is built when nvcc is found);
# CW_SANITIZE=address,undefined (or another -fsanitize= list) builds a
# checking build, without the CUDA backend; CW_BUILD_DIR (default build);
# CW_JOBS (default nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=all
case ${1:-} in
"") ;;
--deps-only) mode=deps ;;
--check) mode=check ;;
-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
*) echo "usage: deploy/setup.sh [--deps-only | --check]" >&2; exit 2 ;;
esac

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=/dev/null
. /etc/os-release 2>/dev/null || true
say "system: ${PRETTY_NAME:-unknown} ($(uname -m)), $(nproc) cores"
[[ ${ID:-} == debian || ${ID_LIKE:-} == *debian* ]] ||
    say "warning: not Debian; package names below are Debian's"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have() { command -v "$1" >/dev/null 2>&1; }
# True when version $1 >= version $2.
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

java_major() {
    local ver major
    ver=$("${JAVA_HOME:+$JAVA_HOME/bin/}java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
    major=${ver%%.*}
    [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$ver")
    [[ $major =~ ^[0-9]+$ ]] && echo "$major" || echo 0
}

# --- what is missing ----------------------------------------------------------
missing=()    # required: the build or the tests cannot run without them
optional=()   # wanted: benchmarks only
need_msgpack=0

for p in build-essential pkg-config librdkafka-dev libconfig-dev libopenblas-dev; do
    installed "$p" || missing+=("$p")
done
# cmake may come from elsewhere (pip, a tarball): any cmake >= 3.18 will do.
if ! have cmake || ! version_ge "$(cmake --version | sed -n '1s/[^0-9]*\([0-9.]*\).*/\1/p')" 3.18; then
    missing+=(cmake)
fi
if ! installed libmsgpack-dev && ! installed libmsgpack-c-dev; then
    need_msgpack=1
    missing+=("msgpack-c (libmsgpack-dev / libmsgpack-c-dev)")
fi
if have python3 && python3 -c 'import numpy' 2>/dev/null; then
    :
elif [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    :
else
    installed python3 || missing+=(python3)
    missing+=(python3-numpy)
fi
java_ok=1
if ! have "${JAVA_HOME:+$JAVA_HOME/bin/}java" || (($(java_major) < 17)); then
    java_ok=0
    missing+=(default-jre-headless)
fi
have mvn || missing+=(maven)
have fasttext || optional+=(fasttext)
# The Python baseline worker of bench/e2e.sh (bench/python_worker.py) needs
# one interpreter with all three modules; Debian's go to /usr/bin/python3.
py_bench='import confluent_kafka, msgpack, numpy'
if ! { have python3 && python3 -c "$py_bench" 2>/dev/null; } &&
    ! { [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "$py_bench" 2>/dev/null; }; then
    for p in python3-confluent-kafka python3-msgpack python3-numpy; do
        installed "$p" || [[ " ${missing[*]} " == *" $p "* ]] || optional+=("$p")
    done
fi

# --- install ------------------------------------------------------------------
if ((${#missing[@]} + ${#optional[@]} == 0)); then
    say "all packages present; apt not needed"
elif [[ $mode == check ]]; then
    ((${#missing[@]})) && say "missing: ${missing[*]}"
    ((${#optional[@]})) && say "missing (optional, benchmarks): ${optional[*]}"
    ((${#missing[@]} == 0)) || exit 1
elif ((EUID != 0)); then
    ((${#missing[@]})) && say "missing: ${missing[*]}"
    ((${#optional[@]})) && say "missing (optional, benchmarks): ${optional[*]}"
    say "not root: install them with"
    say "  sudo apt-get update && sudo apt-get install --no-install-recommends <the packages above>"
    say "  (msgpack-c: libmsgpack-dev on Debian 12, libmsgpack-c-dev on Debian 13)"
    ((${#missing[@]} == 0)) || exit 1
else
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
    t0=$SECONDS
    say "apt-get update"
    apt-get update -q -o DPkg::Lock::Timeout=600 || {
        say "apt-get update failed; retrying once in 10 s"
        sleep 10
        apt-get update -q -o DPkg::Lock::Timeout=600
    }
    # Has apt a candidate version of package $1?
    available() {
        local c
        c=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
        [[ -n $c && $c != "(none)" ]]
    }
    pkgs=()
    for m in "${missing[@]}"; do
        [[ $m == msgpack-c* ]] && continue
        pkgs+=("$m")
    done
    if ((need_msgpack)); then
        # Debian 13 split msgpack into libmsgpack-c-dev and libmsgpack-cxx-dev;
        # Debian 12 has the C library in libmsgpack-dev.
        if available libmsgpack-c-dev; then
            pkgs+=(libmsgpack-c-dev)
        elif available libmsgpack-dev; then
            pkgs+=(libmsgpack-dev)
        else
            die "apt offers neither libmsgpack-c-dev nor libmsgpack-dev"
        fi
    fi
    if ((!java_ok)) && ! available default-jre-headless; then
        die "no Java runtime 17+ found and apt has no default-jre-headless"
    fi
    for o in "${optional[@]}"; do
        if available "$o"; then pkgs+=("$o"); else say "warning: apt has no '$o' (optional; benchmarks skip it)"; fi
    done
    say "apt-get install ${pkgs[*]}"
    apt-get install "${apt_opts[@]}" "${pkgs[@]}"
    say "packages installed in $((SECONDS - t0)) s"
    ((java_ok)) || (($(java_major) >= 17)) ||
        die "java on PATH is still older than 17 after installing default-jre-headless (set JAVA_HOME)"
fi

if ! python3 -c 'import numpy' 2>/dev/null && [[ -x /usr/bin/python3 ]] &&
    /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    say "note: numpy is available to /usr/bin/python3, not to $(command -v python3 || echo python3)"
fi

[[ $mode == all ]] || exit 0

# --- configure and build --------------------------------------------------------
build_dir=${CW_BUILD_DIR:-build}
jobs=${CW_JOBS:-$(nproc)}
cmake_args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
[[ ${CW_WERROR:-0} == 1 ]] && cmake_args+=(-DCW_WERROR=ON)
[[ -n ${CW_CUDA:-} ]] && cmake_args+=("-DCW_CUDA=$CW_CUDA")
[[ -n ${CW_SANITIZE:-} ]] && cmake_args+=("-DCW_SANITIZE=$CW_SANITIZE")

t0=$SECONDS
say "cmake ${cmake_args[*]}"
mkdir -p "$build_dir"
cmake "${cmake_args[@]}" 2>&1 | tee "$build_dir/configure.log"
cuda_line=$(grep -o 'catwire: CUDA backend: .*' "$build_dir/configure.log" | tail -n1 || true)
say "${cuda_line:-catwire: CUDA backend: (not reported by CMakeLists.txt)}"

say "cmake --build $build_dir -j$jobs"
cmake --build "$build_dir" -j"$jobs"
say "built in $((SECONDS - t0)) s (${cuda_line#catwire: })"

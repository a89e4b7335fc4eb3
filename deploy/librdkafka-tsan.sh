#!/usr/bin/env bash
# catwire: build a ThreadSanitizer-ready librdkafka for the CW_SANITIZE=thread
# build's Kafka tests, and print the pkg-config directory to use it.
#
#   deploy/librdkafka-tsan.sh [PREFIX]     (default PREFIX: ./.deps/librdkafka-tsan)
#   PKG_CONFIG_PATH=$(deploy/librdkafka-tsan.sh) CW_SANITIZE=thread \
#       CW_BUILD_DIR=build-tsan setarch "$(uname -m)" -R deploy/test.sh
#
# Why: Debian's librdkafka starts its threads with libc's C11 thrd_create,
# which ThreadSanitizer does not intercept, so every Kafka client crashes at
# start under it (librdkafka PR #2541, google/sanitizers #1195). This builds
# the same upstream version as the installed librdkafka-dev, from Debian's
# source package (fetched and checked by apt against the signed archive, with
# deb-src lines made from this machine's own apt sources, in a private apt
# state: the system's apt configuration is not touched), configured with
# --disable-c11threads (its threads then start with pthread_create) and itself
# compiled with -fsanitize=thread, so that its atomics and locks are seen as
# synchronisation and a race between our threads through the library is
# reported with both stacks. For checking builds only: never install it.
#
# Idempotent: an existing build of the same version is reused (about 25 s on
# 2 cores otherwise). Needs network access to the Debian archive; it fails,
# rather than falling back to the system library, when the source cannot be
# had. Progress goes to stderr; stdout is only the pkg-config directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-$root/.deps/librdkafka-tsan}
[[ $prefix == /* ]] || prefix=$PWD/$prefix

say() { printf 'librdkafka-tsan: %s\n' "$*" >&2; }
die() { printf 'librdkafka-tsan: error: %s\n' "$*" >&2; exit 1; }

# The installed package's source version (e.g. 2.0.2-1) and its upstream part.
read -r src_version version < <(dpkg-query -W -f='${source:Version} ${source:Upstream-Version}\n' librdkafka-dev 2>/dev/null) ||
    die "librdkafka-dev is not installed (run deploy/setup.sh --deps-only first)"
stamp=$prefix/.catwire-version
if [[ -f $stamp && $(cat "$stamp") == "$version" && -f $prefix/lib/pkgconfig/rdkafka.pc ]]; then
    say "librdkafka $version already built in $prefix"
    echo "$prefix/lib/pkgconfig"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/catwire-rdkafka-tsan.XXXXXX")
trap 'rm -rf "$work"' EXIT

# deb-src twins of this machine's apt sources (deb822 .sources files and
# one-line .list files alike), in a private apt state under $work.
mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$work/apt/parts/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] && sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "$f" >"$work/apt/parts/$(basename "$f").list"
done
apt_opts=(-o "Dir::Etc::SourceParts=$work/apt/parts" -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
    -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
say "fetching the source of librdkafka $version (Debian's source package)"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update of the deb-src indexes failed"
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "librdkafka=$src_version" >&2) ||
    die "apt-get source librdkafka failed"
orig=$(find "$work/src" -maxdepth 1 -name "librdkafka_${version}.orig.tar.*" | head -n1)
[[ -n $orig ]] || die "no librdkafka_${version}.orig.tar.* among the downloaded files"
tar -C "$work/src" -xf "$orig"
srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'librdkafka*' | head -n1)
[[ -n $srcdir ]] || die "the source archive held no librdkafka directory"

say "building librdkafka $version with --disable-c11threads and -fsanitize=thread into $prefix"
rm -rf "$prefix"
# step NAME CMD...: run CMD in the source tree, its output in $work/NAME.log;
# on failure that log's tail, then stop.
step() {
    local name=$1
    shift
    (cd "$srcdir" && "$@") >"$work/$name.log" 2>&1 && return 0
    tail -n 30 "$work/$name.log" >&2
    die "the librdkafka build failed at $name (log above)"
}
step configure env CFLAGS="-fsanitize=thread -O1 -g" LDFLAGS="-fsanitize=thread" ./configure --prefix="$prefix" \
    --disable-c11threads --disable-gssapi --disable-curl --disable-zstd
step make make -j"${CW_JOBS:-$(nproc)}" -C src
step install make -C src install
# The point of the exercise: no C11 thread start left in the library.
if nm -D "$prefix/lib/librdkafka.so" | grep -q ' U thrd_create'; then
    die "the built librdkafka still calls thrd_create"
fi
echo "$version" >"$stamp"
say "done"
echo "$prefix/lib/pkgconfig"

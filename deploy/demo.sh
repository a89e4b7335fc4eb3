#!/usr/bin/env bash
# catwire: run the main job with no Kafka to install (the README's first command).
#
#   deploy/demo.sh [catwire demo options...]
#
# Sets the machine up and builds into ./build (deploy/setup.sh), then runs
# `build/worker/catwire demo`: an embedded broker, the model `news` from
# ./registry (trained on the AG News train file and published there the
# first time, which takes a little while), a worker in-process, the 7,600
# AG News test articles streamed through it, results read back with a
# running accuracy, and a summary. Options are passed to `catwire demo`
# (see `build/worker/catwire demo --help`), e.g. --articles 50000 or
# --brokers 127.0.0.1:9092 for a real cluster.
#
# Environment: CATWIRE_REGISTRY (default ./registry), CATWIRE_DATA (default
# ../shared/data/ag_news), CW_BUILD_DIR (default build), CW_SKIP_SETUP=1 to
# use an existing build as it is.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${CW_BUILD_DIR:-build}

if [[ ${CW_SKIP_SETUP:-0} != 1 ]]; then
    deploy/setup.sh
fi
if [[ ! -x $build/worker/catwire ]]; then
    echo "demo.sh: $build/worker/catwire is missing; run deploy/setup.sh" >&2
    exit 1
fi
data=${CATWIRE_DATA:-../shared/data/ag_news}
if [[ ! -f $data/test.csv || ! -f $data/train.csv ]]; then
    echo "demo.sh: AG News files not found in $data (set CATWIRE_DATA to the folder with train.csv and test.csv)" >&2
    exit 1
fi
export CATWIRE_DATA=$data
export CATWIRE_REGISTRY=${CATWIRE_REGISTRY:-registry}
exec "$build/worker/catwire" demo "$@"

#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets with clang, ASan and UBSan, and runs each for a
# bounded time (LIANGDI_FUZZ_SECONDS, default 60) on its seed corpus in tests/fuzz/corpus.
# A finding fails the run and leaves the crashing input in build-fuzz/tests/fuzz/*-corpus/.
# With --build-only it builds them and stops (deploy/test.sh builds them so while the
# sanitizer tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ld_install_deps clang libclang-rt-14-dev
secs=${LIANGDI_FUZZ_SECONDS:-60}
opts=(-Dfuzz=true -Dfuzz_seconds="$secs" -Db_sanitize=address,undefined -Db_lundef=false)
if [ -f build-fuzz/build.ninja ]; then
    meson configure build-fuzz "${opts[@]}" >/dev/null   # see ld_build
else
    CC=clang meson setup build-fuzz "${opts[@]}"
fi
targets=$(sed -n "s/^ *'\(fuzz_[a-z_]*\)' *:.*/tests\/fuzz\/\1/p" tests/fuzz/meson.build)
# shellcheck disable=SC2086
meson compile -C build-fuzz $targets
if [ "${1:-}" = --build-only ]; then
    exit 0
fi
meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs

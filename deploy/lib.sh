# lib.sh: what deploy/test.sh, deploy/quickstart.sh and tests/bench/run share:
# installing the Debian packages liangdi needs (only those missing) and building it.
# Source it; it defines functions and sets nothing else.

# The Debian 12 packages a build and its tests need.
LD_PACKAGES=(
    gcc libc6-dev pkg-config meson ninja-build python3
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev
    libcriterion-dev libinih-dev libsodium-dev libicu-dev
)

ld_root_cmd() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ld_install_deps [EXTRA_PACKAGE...]: apt-get installs whatever is missing, nothing else.
ld_install_deps() {
    local missing=() p
    for p in "${LD_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "liangdi: installing ${missing[*]}" >&2
        ld_root_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        ld_root_cmd env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# ld_build BUILD_DIR [MESON_SETUP_ARG...]: configures BUILD_DIR (an existing one gets
# the options given again) and compiles this source tree, from whichever folder it is
# called.
ld_build() {
    local dir=$1 src
    shift
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -f "$dir/build.ninja" ]; then
        # `meson configure`, not `meson setup --reconfigure`: Debian 12's meson (1.0)
        # keeps a built-in option such as b_sanitize as it was on a reconfigure
        if [ $# -gt 0 ]; then
            meson configure "$dir" "$@" >/dev/null
        fi
    else
        meson setup "$dir" "$src" "$@"
    fi
    meson compile -C "$dir"
}

# ld_count_results BUILD_DIR...: prints "N passed, N failed" from meson's test logs
# (a skipped test is neither) and returns 1 if anything failed or nothing ran.  Each
# failed test is named just above that line, with Criterion's verdicts (failed
# assertions, crashes) and the last lines of its output, so that the end of a long log
# says what failed.
ld_count_results() {
    python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
failures = []
for d in sys.argv[1:]:
    try:
        with open(d + "/meson-logs/testlog.json", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                t = json.loads(line)
                r = t.get("result")
                if r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
                    failures.append((d, t))
    except FileNotFoundError:
        failed += 1
        print(f"no test log in {d}", file=sys.stderr)
if skipped:
    print(f"({skipped} skipped)")
for d, t in failures:
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    lines = [l for l in out.splitlines() if l.strip()]
    # Criterion's own verdicts first (a long log of the processes may follow them)
    verdicts = [l for l in lines if "Assertion Failed" in l or "[FAIL]" in l
                or "[----]   " in l or "CRASH" in l][:20]
    print(f"FAILED {d}: {t.get('name')} ({t.get('result')}, "
          f"{t.get('duration') or 0:.1f} s):")
    for l in verdicts:
        print(f"    {l[:300]}")
    print("  the end of its output:")
    for l in lines[-25:]:
        print(f"    {l[:300]}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
PY
}

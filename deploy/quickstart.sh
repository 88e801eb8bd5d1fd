#!/usr/bin/env bash
# quickstart.sh: the README's first command.  Builds liangdi, then runs the seed township's
# half-year on a loopback broker and three nodes, and prints what each side would see.
#
# Usage: deploy/quickstart.sh [FOLDER]     (default ./liangdi-demo, or $LIANGDI_DEMO_DIR)
#
# The folder is wiped and made again on every run (only if it is empty or an earlier demo
# made it).  With LIANGDI_BIN and LIANGDI_BROKER_BIN set to built binaries, nothing is
# installed or built (the test suite runs it that way).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seed=$root/deploy/seed
demo=${1:-${LIANGDI_DEMO_DIR:-./liangdi-demo}}
unset LIANGDI_DB LIANGDI_CONFIG LIANGDI_BROKER_DB LIANGDI_BROKER_CONFIG

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# ---- 1. what is needed, and the build ----
if [ -n "${LIANGDI_BIN:-}" ] && [ -n "${LIANGDI_BROKER_BIN:-}" ]; then
    liangdi=$LIANGDI_BIN
    broker=$LIANGDI_BROKER_BIN
    step "Using the binaries given: $liangdi, $broker"
else
    step "Installing what is missing and building liangdi (in $root/build)"
    # shellcheck source=deploy/lib.sh
    . "$root/deploy/lib.sh"
    ld_install_deps
    ld_build "$root/build"
    liangdi=$root/build/node/liangdi
    broker=$root/build/broker/liangdi-broker
fi
[ -x "$liangdi" ] || die "no liangdi binary at $liangdi"
[ -x "$broker" ] || die "no liangdi-broker binary at $broker"
started=$SECONDS

# ---- 2. the demo folder, wiped and made again ----
if [ -e "$demo" ]; then
    if [ -f "$demo/.liangdi-demo" ] || [ -z "$(ls -A "$demo" 2>/dev/null)" ]; then
        rm -rf "$demo"
    else
        die "$demo exists and was not made by quickstart.sh; give another folder"
    fi
fi
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
: > "$demo/.liangdi-demo"
log=$demo/quickstart.log
step "The demo lives in $demo (commands and their output: $log)"

broker_pid=
pids=()        # the recorders that write the half-year, while they run
cleanup() {
    local rc=$? p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        local i
        for i in $(seq 100); do
            kill -0 "$broker_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        printf 'quickstart: failed (exit %d); the last lines of %s:\n' "$rc" "$log" >&2
        tail -n 15 "$log" >&2 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD...: runs a command with its output going to the log; stops the demo if it fails.
run() {
    printf '$ %s\n' "$*" >>"$log"
    "$@" >>"$log" 2>&1 || die "failed: $*"
}
# out CMD...: like run, but prints the command's standard output (for ids and keys).
out() {
    local text
    printf '$ %s\n' "$*" >>"$log"
    text=$("$@" 2>>"$log") || { printf '%s\n' "$text" >>"$log"; die "failed: $*"; }
    printf '%s\n' "$text" >>"$log"
    printf '%s\n' "$text"
}
# z85_key TEXT: the last 40-character Z85 token in TEXT (a CURVE public key).
z85_key() {
    printf '%s\n' "$1" | grep -oE '[][0-9A-Za-z.:+=^!/*?&<>(){}@%$#-]{40}' | tail -n 1
}
# line WORD...: the words as one line of a `liangdi batch` file; a word with a blank, a
# quote, a backslash or a # in it, or an empty one, goes in single quotes (a ' inside it
# written '\'').
line() {
    local w text=
    for w in "$@"; do
        case $w in
            ''|*[[:space:]\'\"\\#]*) w="'${w//\'/\'\\\'\'}'" ;;
        esac
        text+=${text:+ }$w
    done
    printf '%s\n' "$text"
}
# node NAME ARGS...: runs liangdi against node NAME's store and config.
node() {
    local n=$1; shift
    "$liangdi" --config "$demo/$n/node.conf" --db "$demo/$n/liangdi.db" "$@"
}
bk() { "$broker" --config "$demo/broker/broker.conf" --db "$demo/broker/broker.db" "$@"; }

# ---- 3. the broker and three nodes, with fresh keys ----
declare -A node_name=(
    [zhuyuan]=竹园镇党委
    [dongguan]=中共竹园镇外出创业群体广东东莞支部委员会
    [shenzhen]=中共竹园镇外出创业群体广东深圳支部委员会
)
nodes=(zhuyuan dongguan shenzhen)

step "Making the broker's store and keypair"
mkdir -m 0700 "$demo/broker"
printf '[broker]\ndb = %s\nlog_level = info\n' "$demo/broker/broker.db" \
    > "$demo/broker/broker.conf"
broker_key=$(z85_key "$(out bk init)")
[ -n "$broker_key" ] || die "liangdi-broker init printed no public key"
echo "    broker public key: $broker_key"

step "Starting the broker on a free loopback port"
# Started directly (not through a function) so that $! is the broker itself.
"$broker" --config "$demo/broker/broker.conf" --db "$demo/broker/broker.db" \
    run --bind 'tcp://127.0.0.1:*' >"$demo/broker/broker.log" 2>&1 &
broker_pid=$!
deadline=$((SECONDS + 20))
until grep -q 'ready, listening on ' "$demo/broker/broker.log" 2>/dev/null; do
    kill -0 "$broker_pid" 2>/dev/null || { cat "$demo/broker/broker.log" >&2; die "the broker exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { cat "$demo/broker/broker.log" >&2; die "the broker was not ready in 20 s"; }
    sleep 0.05
done
endpoint=$(grep -m1 -o 'ready, listening on [^ ,;)]*' "$demo/broker/broker.log")
endpoint=${endpoint#ready, listening on }
case $endpoint in
    tcp://127.0.0.1:[0-9]*) ;;
    *) die "the broker's ready line names no loopback endpoint: $endpoint" ;;
esac
echo "    ready, listening on $endpoint"

step "Making three nodes (Zhuyuan home township, Dongguan and Shenzhen branches) and registering them"
for n in "${nodes[@]}"; do
    mkdir -m 0700 "$demo/$n"
    printf '[node]\ndb = %s\ntimeout = 30s\nlog_level = warn\n' "$demo/$n/liangdi.db" \
        > "$demo/$n/node.conf"
    key=$(z85_key "$(out node "$n" init --node "$n" --name "${node_name[$n]}" \
                         --broker "$endpoint" --broker-key "$broker_key")")
    [ -n "$key" ] || die "liangdi init printed no public key for $n"
    run bk node add "$n" --key "$key" --name "${node_name[$n]}"
    echo "    $n  ${node_name[$n]}  $key"
done
run bk link add zhuyuan dongguan
run bk link add zhuyuan shenzhen
echo "    linked zhuyuan-dongguan, zhuyuan-shenzhen"

sync_all() {
    local n
    for n in "$@"; do
        run node "$n" sync --timeout 30
    done
}

# ---- 4. the seed township on the home node ----
step "Loading the seed township on the home node: orgs, members, trips, agreements"
# Each group of records is one file of commands, run by `liangdi batch` in one
# transaction (the files stay in the demo folder, to read or to run again elsewhere).
orgs=0
while IFS=, read -r id name kind parent keeper; do
    [ "$id" = id ] && continue
    args=(org add "$id" --name "$name" --kind "$kind")
    [ -n "$parent" ] && args+=(--parent "$parent")
    [ -n "$keeper" ] && [ "$keeper" != zhuyuan ] && args+=(--node "$keeper")
    line "${args[@]}"
    orgs=$((orgs + 1))
done < "$seed/orgs.csv" > "$demo/zhuyuan/orgs.txt"
run node zhuyuan batch "$demo/zhuyuan/orgs.txt"
run node zhuyuan member import "$seed/members.csv"

# The members, in trips.csv order: name, inflow branch, departure date.
members=() member_to=() member_left=()
while IFS=, read -r member to date employer address; do
    [ "$member" = member ] && continue
    members+=("$member"); member_to+=("$to"); member_left+=("$date")
    line trip start "$member" --to "$to" --date "$date" --employer "$employer" \
        --address "$address" >> "$demo/zhuyuan/trips.txt"
done < "$seed/trips.csv"
run node zhuyuan batch "$demo/zhuyuan/trips.txt"

agreement_out=() agreement_in=()
while IFS=, read -r outflow inflow signed; do
    [ "$outflow" = outflow ] && continue
    agreement_out+=("$outflow"); agreement_in+=("$inflow")
    line agreement add --outflow "$outflow" --inflow "$inflow" --signed "$signed" \
        --terms "两地双管共管协议" >> "$demo/zhuyuan/agreements.txt"
done < "$seed/agreements.csv"
# the batch prints each new agreement's id, in the file's order
mapfile -t agreements < <(out node zhuyuan batch "$demo/zhuyuan/agreements.txt")
[ "${#agreements[@]}" -eq "${#agreement_out[@]}" ] \
    || die "agreement batch printed ${#agreements[@]} ids for ${#agreement_out[@]} agreements"
echo "    $orgs organisations, ${#members[@]} mobile members, ${#agreements[@]} agreements"

step "Syncing, so that each branch receives its members and agreements"
sync_all zhuyuan dongguan shenzhen

# ---- 5. the first half of 2010, on both sides ----
# Deliberate gaps, so that the report has something to say:
#   member i with i % 25 == 11: no organisational life or dues at all in 2010 (breach);
#   member i with i % 12 == 7:  nothing since a January meeting at home (warning);
#   member i with i % 17 == 5:  never reported in at the inflow branch;
#   member i with i % 30 == 13: no assessment from the home side;
#   member 40:                  eight months of dues back-paid at once;
#   each branch's committee and group meet monthly, and all its members in March and
#   June, recorded for its first member; Shenzhen's group skipped June (breach);
#   agreements 4 and 13:        no contact this half-year; agreements 9 and 22: no visit.
# rec NODE ARGS...: one write on NODE, a line of its half-year's batch file, counted.
recorded=0
rec() {
    recorded=$((recorded + 1))
    line "${@:2}" >> "$demo/$1/half-year.txt"
}
month_of() { echo $((10#${1:5:2})); }
day_of() { echo $((10#${1:8:2})); }

record_home() {
    local i m
    for i in "${!members[@]}"; do
        local who=${members[$i]}
        rec zhuyuan activity add "$who" --date 2009-12-20 --kind meeting \
            --note "年终全体党员大会"
        if [ $((i % 12)) -eq 7 ]; then
            rec zhuyuan activity add "$who" --date 2010-01-20 --kind meeting \
                --note "春节前返乡党员座谈"
        fi
        if [ "$(month_of "${member_left[$i]}")" -ge 2 ] && [ $((i % 25)) -ne 11 ]; then
            rec zhuyuan activity add "$who" --date 2010-01-25 --kind dues \
                --month 2010-01 --amount $((5 + i % 4 * 5))
        fi
        if [ $((i % 30)) -ne 13 ]; then
            rec zhuyuan assess "$who" --year 2009 --side outflow --grade competent
        fi
        # the seed's two who built businesses away, at the Spring Festival symposium,
        # and honoured in the 2009 selection
        case $who in
            林术平|张小平)
                rec zhuyuan activity add "$who" --date 2010-02-16 --kind symposium \
                    --note "春节返乡创业党员座谈会"
                rec zhuyuan honour add "$who" --year 2009 --kind prosperous \
                    --date 2010-02-16 --note "返乡投资，带动群众致富" ;;
        esac
        # "1+1": an office member paired with a member in difficulty, a grant from the
        # help fund, and a place on the township's training course
        if [ $((i % 25)) -eq 11 ]; then
            rec zhuyuan support add "$who" --kind pairing --date 2010-03-01 \
                --helper "镇党政办党员" --note "机关党员一对一帮扶"
            rec zhuyuan support add "$who" --kind fund --date 2010-03-01 --amount 500 \
                --note "帮扶资金"
            rec zhuyuan support add "$who" --kind training --date 2010-04-20 \
                --note "镇农业服务中心种养技术培训"
        fi
    done
    for i in "${!agreements[@]}"; do
        if [ $((i % 2)) -eq 0 ] && [ "$i" -ne 4 ]; then
            rec zhuyuan contact add "${agreements[$i]}" --date "2010-03-$((10 + i % 15))" \
                --channel phone --note "半年电联"
        fi
        if [ "${agreement_in[$i]}" = dongguan ] && [ "$i" -ne 9 ]; then
            rec zhuyuan visit add "${agreements[$i]}" --date 2010-04-12 --host dongguan \
                --note "镇党委赴东莞走访"
        fi
    done
}

record_branch() {
    local branch=$1 i m lead=
    for i in "${!members[@]}"; do
        [ "${member_to[$i]}" = "$branch" ] || continue
        local who=${members[$i]} left=${member_left[$i]}
        if [ $((i % 17)) -ne 5 ]; then
            rec "$branch" trip report-in "$who" --date "$(date -d "$left + 6 days" +%F)"
        fi
        rec "$branch" assess "$who" --year 2009 --side inflow --grade competent
        if [ $((i % 25)) -eq 11 ] || [ $((i % 12)) -eq 7 ]; then
            continue
        fi
        local first
        first=$(month_of "$left")
        [ "$(day_of "$left")" -gt 20 ] && first=$((first + 1))
        # the branch's own meetings, on the first member it keeps the book for
        [ -z "$lead" ] && [ "$first" -le 2 ] && lead=$i
        for ((m = first; m <= 6; m++)); do
            rec "$branch" activity add "$who" --date "2010-0$m-25" --kind theme-day \
                --note "主题党日"
            if [ "$i" = "$lead" ]; then
                rec "$branch" activity add "$who" --date "2010-0$m-10" --kind committee \
                    --note "支委会"
                if [ "$branch" != shenzhen ] || [ "$m" -ne 6 ]; then
                    rec "$branch" activity add "$who" --date "2010-0$m-15" --kind group \
                        --note "党小组会"
                fi
                if [ $((m % 3)) -eq 0 ]; then
                    rec "$branch" activity add "$who" --date "2010-0$m-20" --kind meeting \
                        --note "流动党员党支部党员大会"
                fi
            fi
            if [ "$i" -ne 40 ]; then
                rec "$branch" activity add "$who" --date "2010-0$m-25" --kind dues \
                    --month "2010-0$m" --amount $((5 + i % 4 * 5))
            fi
        done
        if [ "$i" -eq 40 ]; then
            for m in 2009-11 2009-12 2010-01 2010-02 2010-03 2010-04 2010-05 2010-06; do
                rec "$branch" activity add "$who" --date 2010-06-28 --kind dues \
                    --month "$m" --amount 10 --note "补交党费"
            done
        fi
    done
    for i in "${!agreements[@]}"; do
        [ "${agreement_in[$i]}" = "$branch" ] || continue
        if [ $((i % 2)) -eq 1 ] && [ "$i" -ne 13 ]; then
            rec "$branch" contact add "${agreements[$i]}" --date "2010-05-$((10 + i % 15))" \
                --channel hotline --note "流动党员热线 800-5-12371"
        fi
        if [ "$branch" = shenzhen ] && [ "$i" -ne 22 ]; then
            rec "$branch" visit add "${agreements[$i]}" --date 2010-02-16 \
                --host "${agreement_out[$i]}" --note "春节回乡互访"
        fi
    done
}

step "Recording January-June 2010 on all three nodes: contacts, visits, organisational life, dues, assessments"
# Each node's half-year is one batch file (half-year.txt in its folder), run in one
# transaction; the three stores are independent, so they are written side by side.
for n in zhuyuan dongguan shenzhen; do
    (
        set -e
        if [ "$n" = zhuyuan ]; then record_home; else record_branch "$n"; fi
        node "$n" batch "$demo/$n/half-year.txt"
        echo "$recorded" > "$demo/$n/recorded"
    ) >"$demo/$n/record.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        failed=1
        printf 'quickstart: recording on %s failed:\n' "${nodes[$i]}" >&2
        tail -n 5 "$demo/${nodes[$i]}/record.log" >&2
    fi
done
pids=()
[ "$failed" -eq 0 ] || die "recording the half-year failed"
for n in "${nodes[@]}"; do
    printf '    %-9s %s records written\n' "$n" "$(cat "$demo/$n/recorded")"
done

step "Syncing every node twice, so that each side has the other's writes"
sync_all zhuyuan dongguan shenzhen zhuyuan dongguan shenzhen

# ---- 6. what each side sees ----
step "The Zhuyuan home township's compliance report as of 2010-07-01"
node zhuyuan report --as-of 2010-07-01

step "The Dongguan branch's view of its own members"
node dongguan member list

step "Do the home township and each branch hold the same records? (liangdi digest)"
for b in dongguan shenzhen; do
    home_digest=$(node zhuyuan digest --with "$b" --format csv) || die "digest on zhuyuan failed"
    branch_digest=$(node "$b" digest --with zhuyuan --format csv) || die "digest on $b failed"
    if [ "$home_digest" != "$branch_digest" ]; then
        printf 'zhuyuan:\n%s\n%s:\n%s\n' "$home_digest" "$b" "$branch_digest" >&2
        die "zhuyuan and $b disagree on the records they share"
    fi
    IFS=, read -r _ count code < <(printf '%s\n' "$home_digest" | grep '^all,')
    printf '    zhuyuan and %-9s agree on %s shared records (digest %s)\n' "$b" "$count" \
        "${code%$'\r'}"
done

step "Stopping the broker"
kill -TERM "$broker_pid"
deadline=$((SECONDS + 20))
while kill -0 "$broker_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
done
kill -0 "$broker_pid" 2>/dev/null && kill -KILL "$broker_pid"
status=0
wait "$broker_pid" || status=$?
broker_pid=
if [ "$status" -ne 0 ]; then
    tail -n 20 "$demo/broker/broker.log" >&2
    die "the broker exited with status $status on SIGTERM"
fi
echo "    stopped cleanly; its log is $demo/broker/broker.log"

step "Done in $((SECONDS - started)) s after the build; the stores stay in $demo"

#!/usr/bin/env bash
# How a store's open (`potluck whoami`, spawn to exit) fares before and
# after a `potluck fsck`, and what the check costs (docs/performance.md,
# "what an open costs is sled's free segments").
#
# Usage: scripts/open-after-check.sh POTLUCK FIXTURE_HOME WORK_DIR [PORT]
#   POTLUCK       a release build of potluck (the one measured)
#   FIXTURE_HOME  a home made by `potluck fixtures` (the sender), e.g. the
#                 cached one of `cargo bench --bench sync_1m`:
#                 target/tmp/bench-fixtures/f5000-m1000000-s1/home
#   WORK_DIR      where the receiver's home is made (emptied first)
#   PORT          a free loopback port for the sender (47021)
# The sender is served by the same build, on 127.0.0.1 only. Every step is
# bounded by `timeout`.
set -u
POTLUCK=${1:?potluck binary}
FIXTURE=${2:?fixture home}
WORK=${3:?work directory}
PORT=${4:-47021}
RECEIVER="$WORK/receiver"
rm -rf "$RECEIVER"
mkdir -p "$WORK"
timeout 30 "$POTLUCK" --home "$RECEIVER" init > /dev/null 2>&1 || { echo "init failed"; exit 1; }
timeout 3600 "$POTLUCK" --home "$FIXTURE" serve --no-discovery --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null' EXIT
sleep 3
timed() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@"; }
echo "sync: $(timed timeout 3600 "$POTLUCK" --home "$RECEIVER" --json sync "127.0.0.1:$PORT" 2>&1 > "$WORK/sync.json" | tail -1)"
kill $SERVE 2>/dev/null
opens() {
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    timeout 60 "$POTLUCK" --home "$RECEIVER" whoami > /dev/null 2>&1
    end=$(date +%s%N)
    echo -n "$(( (end - start) / 1000000 )) ms  "
  done
}
echo "store after the sync: $(du -sm "$RECEIVER/store" | cut -f1) MiB, messages.log $(du -m "$RECEIVER/store/messages.log" | cut -f1) MiB"
echo "whoami before fsck: $(opens)"
echo "fsck: $(timed timeout 3600 "$POTLUCK" --home "$RECEIVER" fsck 2>&1 > "$WORK/fsck.out" | tail -1); $(tail -1 "$WORK/fsck.out")"
echo "whoami after fsck: $(opens)"
echo "sled's file after: $(du -m "$RECEIVER/store/db" | cut -f1) MiB"

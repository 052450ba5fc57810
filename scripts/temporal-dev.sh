#!/usr/bin/env bash
# Makes sure a Temporal server answers at OMNICHAT_TEMPORAL_ADDRESS. When that
# is the local default (127.0.0.1:7233) and nothing answers, it starts the
# Temporal CLI's dev server there in the background, with its state in
# $DATA_DIR/temporal.db so chats survive restarts. SQLite runs in WAL mode with
# synchronous=normal: durable across process crashes, and several times faster
# than a sync per commit. Any other address must already answer: this script
# never starts a server somewhere it was not asked to.
set -euo pipefail
TEMPORAL=${TEMPORAL:-temporal}
DATA_DIR=${DATA_DIR:-.data}
ADDRESS=${OMNICHAT_TEMPORAL_ADDRESS:-127.0.0.1:7233}
answers() { "$TEMPORAL" operator cluster health --address "$ADDRESS" >/dev/null 2>&1; }

if answers; then
  echo "Temporal answers at $ADDRESS"
  exit 0
fi
case "$ADDRESS" in
  127.0.0.1:7233|localhost:7233) ;;
  *)
    echo "Temporal does not answer at $ADDRESS (OMNICHAT_TEMPORAL_ADDRESS)." >&2
    echo "Start that server, or unset OMNICHAT_TEMPORAL_ADDRESS to use a local dev server on 127.0.0.1:7233." >&2
    exit 1 ;;
esac
mkdir -p "$DATA_DIR"
echo "starting the Temporal dev server on 127.0.0.1:7233 (state in $DATA_DIR/temporal.db, log in $DATA_DIR/temporal.log, pid in $DATA_DIR/temporal.pid)"
setsid nohup "$TEMPORAL" server start-dev --ip 127.0.0.1 --db-filename "$DATA_DIR/temporal.db" --log-level warn \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  >"$DATA_DIR/temporal.log" 2>&1 &
echo $! >"$DATA_DIR/temporal.pid" # stop it with: kill $(cat $DATA_DIR/temporal.pid)
for _ in $(seq 1 60); do
  if answers; then
    echo "Temporal dev server ready; its UI is on http://127.0.0.1:8233"
    exit 0
  fi
  sleep 1
done
echo "Temporal dev server did not come up; see $DATA_DIR/temporal.log" >&2
exit 1

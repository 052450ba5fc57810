#!/usr/bin/env bash
# Starts the Temporal dev server in the background unless one already answers
# on 127.0.0.1:7233. State lives in $DATA_DIR/temporal.db, so chats survive restarts.
# SQLite runs in WAL mode with synchronous=normal: durable across process
# crashes and restarts, and several times faster than a sync per commit.
set -euo pipefail
TEMPORAL=${TEMPORAL:-temporal}
DATA_DIR=${DATA_DIR:-.data}
if "$TEMPORAL" operator cluster health --address 127.0.0.1:7233 >/dev/null 2>&1; then
  echo "Temporal dev server already running on 127.0.0.1:7233"
  exit 0
fi
mkdir -p "$DATA_DIR"
echo "starting Temporal dev server (state in $DATA_DIR/temporal.db, log in $DATA_DIR/temporal.log)"
nohup "$TEMPORAL" server start-dev --ip 127.0.0.1 --db-filename "$DATA_DIR/temporal.db" --log-level warn \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  >"$DATA_DIR/temporal.log" 2>&1 &
for _ in $(seq 1 60); do
  if "$TEMPORAL" operator cluster health --address 127.0.0.1:7233 >/dev/null 2>&1; then
    echo "Temporal dev server ready"
    exit 0
  fi
  sleep 1
done
echo "Temporal dev server did not come up; see $DATA_DIR/temporal.log" >&2
exit 1

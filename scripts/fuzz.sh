#!/usr/bin/env bash
# Generated-input testing of every operation in openapi.yaml (schemathesis) against the local API:
# no 5xx, only documented statuses, every reply matching its schema. The caller is a real member of a
# real org and room, so requests reach the handlers instead of stopping at 403.
#   scripts/fuzz.sh [EXAMPLES_PER_OPERATION]   (make test runs a bounded pass, make fuzz a long one)
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-10}
schemathesis=.venv/bin/schemathesis   # installed by `make test`
cargo build --quiet -p dm-local
bin=target/debug/dm-local
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DM_RATE_LIMIT=0 RUST_LOG=error "$bin" --in-memory --port "$port" >"$work/dm-local.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
api="http://127.0.0.1:$port"
for _ in $(seq 1 120); do curl -sf "$api/api/v1/ping" >/dev/null && break; sleep 0.5; done

token=$("$bin" token --user fuzzer)
call() { curl -sf -X "$1" "$api$2" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$3"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
org=$(call POST /api/v1/orgs '{"name": "Fuzz"}' | field org_id)
call POST "/api/v1/org/$org/members" '{"member_id": "friend", "email": "friend@example.com"}' >/dev/null
room=$(call POST "/api/v1/org/$org/room" '{"room_user_ids": ["friend"]}' | field room_id)
message=$(call POST "/api/v1/org/$org/rooms/$room/messages" '{"sender_id": "fuzzer", "message": "hello"}' | field message_id)

cat >"$work/schemathesis.toml" <<TOML
[parameters]
"path.org_id" = "$org"
"path.room_id" = "$room"
"path.message_id" = "$message"
"path.user_id" = "fuzzer"
TOML
"$schemathesis" --config-file "$work/schemathesis.toml" run openapi.yaml \
  --url "$api" -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 20261125 --no-color

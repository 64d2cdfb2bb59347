#!/usr/bin/env bash
# Contract test: schemathesis generates requests from the OpenAPI document the
# server serves (GET /api/openapi.json) and checks every response against it:
# no 5xx, documented status codes only, bodies and content types that match
# their schemas. Runs against a fresh tidesync server: the binary on a free
# port, SQLite in a temporary directory, one registered user whose token
# schemathesis sends.
#
#   cargo build --release -p tidesync && tools/schemathesis/run.sh
#
# TIDESYNC_BIN overrides the binary (default target/release/tidesync).
# The venv (schemathesis, pinned in requirements.txt, from PyPI) is created in
# target/schemathesis-venv. Extra arguments go to `schemathesis run`
# (e.g. --max-examples 20). Exits with schemathesis's status.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${TIDESYNC_BIN:-$root/target/release/tidesync}"
venv="$root/target/schemathesis-venv"

if [[ ! -x "$bin" ]]; then
  echo "run.sh: no tidesync binary at $bin (cargo build --release -p tidesync, or set TIDESYNC_BIN)" >&2
  exit 2
fi

if [[ ! -x "$venv/bin/schemathesis" ]] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

source "$root/tools/fresh-server.sh"
# Rate limits high enough for a generated run: what is tested is the contract,
# not the limiter (its 429 is documented and has its own HTTP tests).
# REQUEST_TIMEOUT=7s caps long polls (waitSeconds) at 2 s, below the client's
# timeout.
start_fresh_server "$bin" RATE_LIMIT_PER_MINUTE=1000000 AUTH_RATE_LIMIT_PER_MINUTE=1000000 REQUEST_TIMEOUT=7s

# Test data: user A owns a space shared with user B (A invited B, B
# accepted), and a pending invitation to an email without an account, so the
# members and invitation endpoints act on a real space, member and
# invitation (their ids are given to schemathesis as the path parameters'
# values). Schemathesis sends A's token.
api() { # METHOD PATH [TOKEN] [BODY]
  curl -fsS -X "$1" "$base$2" -H 'Content-Type: application/json' \
    ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}
}
field() { # dotted path under data, e.g. user.id
  python3 -c 'import json,sys
d = json.load(sys.stdin)["data"]
for k in sys.argv[1].split("."): d = d[k]
print(d)' "$1"
}
token="$(api POST /api/auth/register "" \
  '{"email":"contract@example.com","password":"contract-password-1","name":"Contract"}' | field token)"
member_auth="$(api POST /api/auth/register "" \
  '{"email":"member@example.com","password":"member-password-1","name":"Member"}')"
member="$(field user.id <<<"$member_auth")"
member_token="$(field token <<<"$member_auth")"
space="$(python3 -c 'import uuid; print(uuid.uuid4())')"
api POST /api/sync "$token" "{\"deviceId\":\"seed\",\"changes\":[{\"operationId\":\"seed-space\",\"id\":\"$space\",\"entityType\":\"space\",\"operation\":\"create\",\"data\":{\"name\":\"Shared\"},\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\",\"deviceId\":\"seed\"}]}" >/dev/null
invited="$(api POST "/api/spaces/$space/members" "$token" '{"email":"member@example.com","role":"editor"}' | field invitation.id)"
api POST "/api/invitations/$invited/accept" "$member_token" >/dev/null
invitation="$(api POST "/api/spaces/$space/members" "$token" '{"email":"someone@example.com","role":"viewer"}' | field invitation.id)"
cat >"$tmp/schemathesis.toml" <<TOML
[parameters]
"path.space_id" = "$space"
"path.user_id" = "$member"
"path.invitation_id" = "$invitation"
TOML

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
run() {
  "$venv/bin/schemathesis" --config-file "$tmp/schemathesis.toml" run "$base/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --workers 1 \
    --request-timeout 15 \
    "$@"
}
status=0
# Logout revokes the token every other operation is sent with: it runs alone,
# after the rest.
run --exclude-path /api/auth/logout "${@}" || status=$?
if [[ $status -eq 0 ]]; then
  run --include-path /api/auth/logout "${@}" || status=$?
fi
if [[ $status -ne 0 ]]; then
  echo "run.sh: schemathesis failed ($status); server log tail:" >&2
  tail -n 30 "$tmp/server.log" >&2
fi
exit "$status"

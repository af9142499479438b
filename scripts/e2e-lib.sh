# shellcheck shell=bash
# e2e-lib.sh — helpers for end-to-end tests of a registry with real clients
# (Debian's docker 20.10, skopeo, podman, buildah). Source it from bash:
#
#   source scripts/e2e-lib.sh
#   e2e_isolate "$0" "$@"          # optional: re-exec in private mount+pid namespaces
#   e2e_init                       # creates $E2E_DIR, installs the cleanup trap
#   build_test_image "$E2E_DIR"
#   start_dockerd "$E2E_DIR" 127.0.0.1:5000
#   dk push ...; sk copy ...; pm push ...
#   summary
#
# Everything lives under $E2E_DIR (a short /tmp/e2e.XXXXXX path: the dockerd
# and containerd unix sockets must stay under ~100 characters). Nothing global
# is configured: each tool gets its config through per-run files and env
# variables (DOCKER_CONFIG, -H unix://…, CONTAINERS_STORAGE_CONF,
# CONTAINERS_REGISTRIES_CONF, CONTAINERS_CONF, REGISTRY_AUTH_FILE, --policy).
# Paths the tools insist on writing anyway (dockerd: /etc/docker/key.json,
# /run/docker, /opt/containerd; containers/image: /var/lib/containers/cache)
# are covered by per-run tmpfs mounts when e2e_isolate is used.
#
# Every daemon is started in its own process group and recorded; the EXIT trap
# (e2e_cleanup) TERMs then KILLs each group. With e2e_isolate the whole run is
# also in a private PID namespace: when the inner script (PID 1 there) ends,
# even by SIGKILL, the kernel kills whatever is left in it. (If only the outer
# supervisor is SIGKILLed, the inner run still finishes, bounded, and cleans up.)

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export E2E_LIB_DIR

# Tunables (seconds).
: "${E2E_CMD_TIMEOUT:=120}"     # any single client command
: "${E2E_START_TIMEOUT:=60}"    # daemon readiness
: "${E2E_STOP_TIMEOUT:=15}"     # graceful stop before SIGKILL

DOCKER_BIN=/usr/bin/docker      # NOT /usr/local/bin/docker (a newer CLI earlier in PATH)
DOCKERD_BIN=/usr/sbin/dockerd   # Debian ships dockerd in /usr/sbin
DISTRIBUTION_BIN=/usr/bin/docker-registry

# ---------------------------------------------------------------- logging ---

E2E_PASSED=0
E2E_FAILED=0
E2E_SKIPPED=0
E2E_FAILED_NAMES=()

if [ -t 1 ]; then _C_OK=$'\e[32m'; _C_BAD=$'\e[31m'; _C_DIM=$'\e[2m'; _C_OFF=$'\e[0m'
else _C_OK=""; _C_BAD=""; _C_DIM=""; _C_OFF=""; fi

log()  { printf '%s[e2e %s] %s%s\n' "$_C_DIM" "$(date +%H:%M:%S)" "$*" "$_C_OFF" >&2; }
die()  { printf '[e2e] FATAL: %s\n' "$*" >&2; exit 2; }

# pass NAME
pass() { E2E_PASSED=$((E2E_PASSED + 1)); printf '%sPASS%s %s\n' "$_C_OK" "$_C_OFF" "$1"; }
# fail NAME MSG
fail() {
  E2E_FAILED=$((E2E_FAILED + 1)); E2E_FAILED_NAMES+=("$1")
  printf '%sFAIL%s %s: %s\n' "$_C_BAD" "$_C_OFF" "$1" "${2:-}"
}
# skip NAME WHY  (not counted as pass or fail)
skip() { E2E_SKIPPED=$((E2E_SKIPPED + 1)); printf 'SKIP %s: %s\n' "$1" "${2:-}"; }

# check NAME CMD...      pass if CMD succeeds; on failure shows its output tail.
check() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then pass "$name"; else fail "$name" "exit $rc: $(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')"; fi
  return $rc
}
# check_fails NAME CMD...  pass only if CMD FAILS (a success is a test failure).
check_fails() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then pass "$name"; return 0; fi
  fail "$name" "expected failure but command succeeded: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
  return 1
}
# check_refused NAME CMD...  pass only if CMD fails with an auth error
# (401/403, "unauthorized", "authentication required", "denied", "forbidden");
# a success, or a failure for another reason, is a test failure.
E2E_REFUSAL_RE='unauthori[sz]ed|no basic auth credentials|authenticat|denied|forbidden|[^0-9](401|403)([^0-9]|$)'
check_refused() {
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    fail "$name" "expected refusal but command succeeded: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    return 1
  fi
  if grep -Eqi "$E2E_REFUSAL_RE" <<<"$out"; then
    pass "$name"
    [ -n "${E2E_VERBOSE:-}" ] && printf '     %s\n' "$(grep -Ei "$E2E_REFUSAL_RE" <<<"$out" | tail -n 1 | grep -Eio ".{0,80}($E2E_REFUSAL_RE).{0,40}" | head -n 1)"
    return 0
  fi
  fail "$name" "failed, but not with an auth error (exit $rc): $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
  return 1
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ -n "$2" ] && [ "$2" = "$3" ]; then pass "$1"; return 0; fi
  fail "$1" "expected '$2', got '$3'"; return 1
}

# summary: prints exactly one final line "N passed, N failed"; non-zero if any failed.
summary() {
  if [ ${#E2E_FAILED_NAMES[@]} -gt 0 ]; then
    printf 'failed steps: %s\n' "${E2E_FAILED_NAMES[*]}"
  fi
  [ "$E2E_SKIPPED" -gt 0 ] && printf '(%d step(s) skipped)\n' "$E2E_SKIPPED"
  if [ -n "${E2E_KEEP:-}" ] || { [ "$E2E_FAILED" -gt 0 ] && [ -n "${E2E_KEEP_ON_FAIL:-}" ]; }; then
    printf 'state kept in %s\n' "${E2E_DIR:-?}"
  fi
  printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
  [ "$E2E_FAILED" -eq 0 ]
}

# ------------------------------------------------------ processes, cleanup ---

E2E_PGIDS=()        # process groups we started (each daemon is a group leader)
E2E_CLEANUP_HOOKS=()

# e2e_spawn LOGFILE CMD...  — start CMD in the background as its own process
# group leader (setsid without fork: bash's background child is not a group
# leader, so $! is the new session/group id). Sets E2E_SPAWNED_PID.
e2e_spawn() {
  local logf=$1; shift
  setsid "$@" </dev/null >>"$logf" 2>&1 &
  E2E_SPAWNED_PID=$!
  E2E_PGIDS+=("$E2E_SPAWNED_PID")
}

# e2e_kill_group PGID — TERM the group, wait (bounded), then KILL.
e2e_kill_group() {
  local pg=$1 i
  kill -TERM -- "-$pg" 2>/dev/null || return 0
  for ((i = 0; i < E2E_STOP_TIMEOUT * 10; i++)); do
    kill -0 -- "-$pg" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
}

e2e_on_cleanup() { E2E_CLEANUP_HOOKS+=("$*"); }

e2e_cleanup() {
  local rc=$? h pg
  trap - EXIT INT TERM
  for h in "${E2E_CLEANUP_HOOKS[@]}"; do eval "$h" || true; done
  for pg in "${E2E_PGIDS[@]}"; do e2e_kill_group "$pg"; done
  if [ -n "${E2E_DIR:-}" ] && [ -d "$E2E_DIR" ]; then
    if [ -n "${E2E_KEEP:-}" ] || { [ "$rc" -ne 0 ] && [ -n "${E2E_KEEP_ON_FAIL:-}" ]; }; then
      :   # summary() said where
    else
      rm -rf "$E2E_DIR" 2>/dev/null || true
    fi
  fi
  exit "$rc"
}

# bounded poll: wait_for SECS CMD...
wait_for() {
  local secs=$1 i; shift
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# wait_for_pid PID SECS CMD... — like wait_for, but gives up as soon as PID dies.
wait_for_pid() {
  local pid=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# ---------------------------------------------------------------- setup ---

# e2e_isolate SCRIPT ARGS... — run SCRIPT again inside private mount + PID
# namespaces (util-linux unshare; needs root) and exit with its status. When
# the inner run ends, every process it started dies with the namespace.
# Inside, per-run tmpfs mounts hide the global paths that dockerd, containerd
# and containers/image write to regardless of flags. The outer shell stays as
# a supervisor: unshare --fork ignores SIGTERM/SIGINT and forwards nothing, so
# on a signal the outer shell TERMs the inner script, waits a few seconds, then
# SIGKILLs unshare (--kill-child: the whole namespace dies) and removes
# $E2E_DIR. Set E2E_NO_ISOLATE=1 to run without namespaces.
e2e_isolate() {
  if [ -n "${E2E_ISOLATED:-}" ]; then _e2e_ns_mounts; return 0; fi
  [ -n "${E2E_NO_ISOLATE:-}" ] && return 0
  if [ "$(id -u)" != 0 ] || ! unshare --mount --pid --fork --mount-proc --propagation private true 2>/dev/null; then
    log "warning: cannot unshare namespaces; running without isolation (dockerd will write /etc/docker/key.json)"
    return 0
  fi
  if [ -z "${E2E_DIR:-}" ]; then
    E2E_DIR=$(mktemp -d /tmp/e2e.XXXXXX) || die "mktemp failed"
    _E2E_OUTER_MADE_DIR=1
  fi
  export E2E_DIR
  E2E_ISOLATED=1 unshare --mount --pid --fork --mount-proc --kill-child --propagation private \
    -- bash "$@" &
  _E2E_UNSHARE_PID=$!
  trap '_e2e_outer_signal 130' INT
  trap '_e2e_outer_signal 143' TERM
  trap '_e2e_outer_signal 129' HUP
  local rc
  while :; do
    wait "$_E2E_UNSHARE_PID"; rc=$?
    kill -0 "$_E2E_UNSHARE_PID" 2>/dev/null || break   # wait returned early on a signal
  done
  _e2e_outer_rmdir "$rc"
  exit "$rc"
}

_e2e_outer_rmdir() {
  if [ -n "${_E2E_OUTER_MADE_DIR:-}" ] && [ -d "$E2E_DIR" ] &&
     { [ -z "${E2E_KEEP:-}" ] && { [ "$1" -eq 0 ] || [ -z "${E2E_KEEP_ON_FAIL:-}" ]; }; }; then
    rm -rf "$E2E_DIR" 2>/dev/null || true
  fi
}

_e2e_outer_signal() {
  local rc=$1 child i
  trap '' INT TERM HUP
  log "signal received: stopping the run"
  child=$(cat "/proc/$_E2E_UNSHARE_PID/task/$_E2E_UNSHARE_PID/children" 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$child" ] && kill -TERM $child 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    kill -0 "$_E2E_UNSHARE_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$_E2E_UNSHARE_PID" 2>/dev/null   # --kill-child takes the namespace down
  wait "$_E2E_UNSHARE_PID" 2>/dev/null
  _e2e_outer_rmdir "$rc"
  exit "$rc"
}

_e2e_ns_mounts() {
  # tmpfs over /run: /run/docker (plugins dir), /run/containers, /run/libpod.
  mount -n -t tmpfs -o mode=755 e2e-run /run && mkdir -p /run/lock /run/user
  # dockerd writes /etc/docker/key.json (no flag for it in 20.10).
  [ -d /etc/docker ] && mount -n -t tmpfs -o mode=755 e2e-etc-docker /etc/docker
  # containerd's "opt" plugin creates /opt/containerd.
  [ -d /opt ] && mount -n -t tmpfs -o mode=755 e2e-opt /opt
  # containers/image keeps its blob-info cache in /var/lib/containers/cache
  # for root, with no env override; buildah/podman create the dir anyway.
  mkdir -p /var/lib/containers && mount -n -t tmpfs -o mode=700 e2e-varlibc /var/lib/containers
  return 0
}

# e2e_init — create $E2E_DIR (unless set) and install the cleanup traps.
e2e_init() {
  if [ -z "${E2E_DIR:-}" ]; then
    E2E_DIR=$(mktemp -d /tmp/e2e.XXXXXX) || die "mktemp failed"
  fi
  mkdir -p "$E2E_DIR"
  export E2E_DIR
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  e2e_containers_env "$E2E_DIR"
}

# free_port — an unused TCP port on 127.0.0.1.
free_port() {
  local p i used
  used=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for ((i = 0; i < 200; i++)); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------- dockerd ---

# start_dockerd DIR REGISTRY_HOSTPORT — private dockerd (vfs, no networking
# setup, no iptables). dockerd 20.10 starts and supervises its own containerd
# (socket under --exec-root); nothing needs to be started separately.
# Exports DOCKER_HOST / DOCKER_CONFIG for the `dk` wrapper.
start_dockerd() {
  local dir=$1 reg=$2
  local d=$dir/dk
  mkdir -p "$d/root" "$dir/x" "$d/cfg" "$d/home"
  echo '{}' >"$d/daemon.json"              # never read /etc/docker/daemon.json
  [ -f "$d/cfg/config.json" ] || echo '{}' >"$d/cfg/config.json"
  E2E_DOCKER_SOCK=$dir/d.sock
  [ ${#E2E_DOCKER_SOCK} -lt 100 ] || die "docker socket path too long: $E2E_DOCKER_SOCK"
  E2E_DOCKERD_LOG=$d/dockerd.log
  export DOCKER_HOST=unix://$E2E_DOCKER_SOCK DOCKER_CONFIG=$d/cfg
  e2e_spawn "$E2E_DOCKERD_LOG" "$DOCKERD_BIN" \
    --config-file "$d/daemon.json" \
    --storage-driver vfs \
    --iptables=false --ip6tables=false --ip-masq=false --bridge none \
    --insecure-registry "$reg" \
    --data-root "$d/root" --exec-root "$dir/x" --pidfile "$d/dockerd.pid" \
    -H "unix://$E2E_DOCKER_SOCK" ${E2E_DOCKERD_DEBUG:+--debug}
  E2E_DOCKERD_PID=$E2E_SPAWNED_PID
  if ! wait_for_pid "$E2E_DOCKERD_PID" "$E2E_START_TIMEOUT" "$DOCKER_BIN" -H "unix://$E2E_DOCKER_SOCK" version; then
    tail -n 20 "$E2E_DOCKERD_LOG" >&2
    return 1
  fi
  log "dockerd ready (pid $E2E_DOCKERD_PID, $DOCKER_HOST)"
}

stop_dockerd() {
  [ -n "${E2E_DOCKERD_PID:-}" ] || return 0
  e2e_kill_group "$E2E_DOCKERD_PID"
  E2E_DOCKERD_PID=""
}

# dk ARGS... — Debian's docker CLI against the private daemon, bounded.
dk() {
  HOME=$E2E_DIR/dk/home timeout "$E2E_CMD_TIMEOUT" "$DOCKER_BIN" -H "unix://$E2E_DOCKER_SOCK" "$@"
}

# ------------------------------------------- podman / skopeo / buildah ---

# e2e_containers_env DIR [REGISTRY_HOSTPORT] — per-run storage.conf (vfs),
# registries.conf (REGISTRY marked insecure), containers.conf, policy.json,
# and an auth file; exported through the env variables the tools honour.
e2e_containers_env() {
  local dir=$1 reg=${2:-}
  local c=$dir/c
  mkdir -p "$c/graph" "$c/run" "$c/tmp" "$c/home"
  cat >"$c/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$c/graph"
runroot = "$c/run"
EOF
  {
    echo 'unqualified-search-registries = []'
    echo 'short-name-mode = "disabled"'
    if [ -n "$reg" ]; then
      printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$reg"
    fi
  } >"$c/registries.conf"
  cat >"$c/containers.conf" <<EOF
[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$c/events.log"
tmp_dir = "$c/tmp"
static_dir = "$c/graph/libpod"
volume_path = "$c/graph/volumes"
[network]
network_config_dir = "$c/net"
EOF
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$c/policy.json"
  [ -f "$c/auth.json" ] || echo '{}' >"$c/auth.json"
  export CONTAINERS_STORAGE_CONF=$c/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$c/registries.conf
  export CONTAINERS_CONF=$c/containers.conf
  export REGISTRY_AUTH_FILE=$c/auth.json
  unset XDG_RUNTIME_DIR XDG_CONFIG_HOME
  E2E_POLICY=$c/policy.json
}

# Wrappers: bounded, with a per-run HOME (so no ~/.docker/config.json or
# ~/.config/containers files of the machine are read).
sk() { HOME=$E2E_DIR/c/home timeout "$E2E_CMD_TIMEOUT" skopeo --policy "$E2E_POLICY" "$@"; }
pm() { HOME=$E2E_DIR/c/home timeout "$E2E_CMD_TIMEOUT" podman --cgroup-manager cgroupfs --events-backend file "$@"; }
bh() { HOME=$E2E_DIR/c/home timeout "$E2E_CMD_TIMEOUT" buildah "$@"; }

# ------------------------------------------------------------ test image ---

# build_test_image DIR — a 2-layer image built offline with buildah from
# busybox-static (layer 1: /bin/busybox; layer 2: a per-run nonce file, so its
# blobs are new to the registry on every run). Outputs:
#   DIR/img/oci          OCI layout, tag "busy:1"   (ref: oci:DIR/img/oci:busy:1)
#   DIR/img/busy.tar     docker-archive, tagged e2e/busy:1 (for `docker load`)
# and sets E2E_IMG_OCI / E2E_IMG_ARCHIVE / E2E_IMG_NONCE.
build_test_image() {
  local dir=$1 c1 c2 bb
  local img=$dir/img
  mkdir -p "$img"
  bb=$(command -v busybox || echo /bin/busybox)
  [ -x "$bb" ] || { log "busybox not found (apt-get install busybox-static)"; return 1; }
  E2E_IMG_NONCE="e2e-$(date +%s)-$$-$RANDOM$RANDOM"
  echo "$E2E_IMG_NONCE" >"$img/nonce"
  local sp=(--signature-policy "$E2E_POLICY")
  {
    c1=$(bh from "${sp[@]}" scratch) &&
    bh copy "$c1" "$bb" /bin/busybox &&
    bh config --cmd '["/bin/busybox","sh","-c","cat /etc/e2e-nonce"]' --env PATH=/bin \
      --label org.skiff.e2e=1 "$c1" &&
    bh commit "${sp[@]}" --format docker "$c1" localhost/e2e-base:1 &&
    bh rm "$c1" &&
    c2=$(bh from "${sp[@]}" --pull-never localhost/e2e-base:1) &&
    bh copy "$c2" "$img/nonce" /etc/e2e-nonce &&
    bh commit "${sp[@]}" --format docker "$c2" localhost/e2e/busy:1 &&
    bh rm "$c2" &&
    bh push "${sp[@]}" localhost/e2e/busy:1 "oci:$img/oci:busy:1" &&
    bh push "${sp[@]}" localhost/e2e/busy:1 "docker-archive:$img/busy.tar:e2e/busy:1" &&
    bh rmi -a -f   # leave the (shared) containers storage empty for podman
  } >"$img/build.log" 2>&1 || { tail -n 20 "$img/build.log" >&2; return 1; }
  E2E_IMG_OCI="oci:$img/oci:busy:1"
  E2E_IMG_ARCHIVE="$img/busy.tar"
  local n
  n=$(jq '.layers | length' "$img/oci/blobs/sha256/$(jq -r '.manifests[0].digest' "$img/oci/index.json" | cut -d: -f2)")
  log "test image built: $n layers ($E2E_IMG_OCI, $E2E_IMG_ARCHIVE)"
  [ "$n" -ge 2 ]
}

# ------------------------------------------------------------- registry ---

# manifest_digest REG REPO REF USER PASS [ACCEPT] — Docker-Content-Digest of a
# HEAD on the manifest (plain HTTP, basic auth as the registry asks for it).
manifest_digest() {
  local reg=$1 repo=$2 ref=$3 user=$4 pass=$5
  local accept=${6:-application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json}
  curl -fsS -m 20 -I -u "$user:$pass" -H "Accept: $accept" \
    "http://$reg/v2/$repo/manifests/$ref" | tr -d '\r' |
    awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

# start_distribution DIR USER PASS — CNCF Distribution 2.8.2 (Debian's
# docker-registry) on 127.0.0.1:<free port>, filesystem storage and a bcrypt
# htpasswd user under DIR. Exports E2E_REGISTRY (host:port) and
# E2E_REGISTRY_LOG. Set E2E_DIST_NOAUTH=1 for an auth-less registry.
start_distribution() {
  local dir=$1 user=$2 pass=$3 port
  local r=$dir/dist
  mkdir -p "$r/data"
  port=$(free_port) || return 1
  htpasswd -Bbn "$user" "$pass" >"$r/htpasswd" 2>/dev/null || return 1
  {
    cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $r/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
    if [ -z "${E2E_DIST_NOAUTH:-}" ]; then
      printf 'auth:\n  htpasswd:\n    realm: skiff-e2e\n    path: %s\n' "$r/htpasswd"
    fi
  } >"$r/config.yml"
  E2E_REGISTRY_LOG=$r/registry.log
  # Distribution overrides its config from REGISTRY_* env variables, and
  # REGISTRY_AUTH_FILE (containers' auth file) would land in auth.file: drop them.
  local unset_reg=() v
  for v in $(compgen -e | grep '^REGISTRY_'); do unset_reg+=(-u "$v"); done
  e2e_spawn "$E2E_REGISTRY_LOG" env "${unset_reg[@]}" "$DISTRIBUTION_BIN" serve "$r/config.yml"
  E2E_DIST_PID=$E2E_SPAWNED_PID
  E2E_REGISTRY=127.0.0.1:$port
  export E2E_REGISTRY E2E_REGISTRY_LOG
  if ! wait_for_pid "$E2E_DIST_PID" "$E2E_START_TIMEOUT" curl -s -m 2 -o /dev/null "http://$E2E_REGISTRY/v2/"; then
    tail -n 20 "$E2E_REGISTRY_LOG" >&2; return 1
  fi
  log "distribution ready on $E2E_REGISTRY (pid $E2E_DIST_PID)"
}

stop_distribution() {
  [ -n "${E2E_DIST_PID:-}" ] || return 0
  e2e_kill_group "$E2E_DIST_PID"; E2E_DIST_PID=""
}

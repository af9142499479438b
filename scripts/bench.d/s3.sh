# shellcheck shell=bash
# scripts/bench.d/s3.sh — the S3 rows of scripts/bench (sourced by it; uses its helpers: rec,
# v2_push, v2_pull, setup_manifest, load_run, rss_start/rss_stop, e2e_spawn, ...).
#
# One single-node Garage 2.5.0 (scripts/garage, in the temp dir, on free ports) with one
# bucket, "bench": Skiff with `[storage] driver = "s3"` under the prefix "skiff", CNCF
# Distribution 2.8.2 with its s3 driver under the root directory "/dist" (redirects off, so
# the bytes flow through the registry, as Skiff's do by default). Both servers run at the
# same time and every measured request alternates between them, the side going first swapped
# every repeat, so the two share the same moments of a machine whose speed drifts.
#
# Every push sends random bytes of its own: Garage deduplicates identical blocks, so the
# second side pushing the same bytes would write nothing.
#
# Rows (keys s3_*): push of S3_BLOB (256 MiB) x REPS and of S3_HUGE (1 GiB) once; pull of the
# 256 MiB blobs x REPS the first time (from Garage on both sides) and again (Skiff: from its
# node's copy, `[storage.s3] cache_mib`, on by default; Distribution: from Garage); pull of the
# 1 GiB blob once; the peak RSS of each server in each phase (does memory grow with the blob?);
# manifest GET (wrk -c64, anonymous); RSS idle.

S3_BLOB=$((256 * 1024 * 1024)) S3_HUGE=$((1024 * 1024 * 1024))
S3_BUCKET_NAME=bench

# s3_need_bytes — bytes of input data the S3 rows generate.
s3_need_bytes() { echo $((REPS * 2 * S3_BLOB + 2 * S3_HUGE)); }

# s3_start_distribution DIR — Distribution on the S3 store, no auth. Sets S3_DIST_PID, S3_DB.
s3_start_distribution() {
  local dir=$1 port
  mkdir -p "$dir"
  port=$(free_port) || return 1
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  s3:
    region: $S3_REGION
    regionendpoint: "$S3_ENDPOINT"
    bucket: $S3_BUCKET_NAME
    accesskey: $AWS_ACCESS_KEY_ID
    secretkey: $AWS_SECRET_ACCESS_KEY
    secure: false
    v4auth: true
    rootdirectory: /dist
  redirect:
    disable: true
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
  # Its S3 driver panics at start (LoadCustomCABundleError) when AWS_CA_BUNDLE is set, as it
  # is on these machines; REGISTRY_* variables would override its config.
  local unset_env=(-u AWS_CA_BUNDLE) v
  for v in $(compgen -e | grep '^REGISTRY_' || true); do unset_env+=(-u "$v"); done
  e2e_spawn "$dir/registry.log" env "${unset_env[@]}" "$DISTRIBUTION_BIN" serve "$dir/config.yml"
  S3_DIST_PID=$E2E_SPAWNED_PID
  S3_DB=http://127.0.0.1:$port
  wait_for_pid "$S3_DIST_PID" 30 curl -s -m 2 -o /dev/null "$S3_DB/v2/" ||
    { tail -n 20 "$dir/registry.log" >&2; return 1; }
}

# s3_start_skiff DIR — Skiff on the S3 store with one user. Sets S3_SKIFF_PID, S3_SB.
s3_start_skiff() {
  local dir=$1 env_u=() v
  mkdir -p "$dir"
  cat >"$dir/registry.toml" <<EOF
listen = "127.0.0.1:0"
standalone = true
data_dir = "$dir/data"
[index]
registration = "open"
token_ttl_secs = 3600
[storage]
driver = "s3"
[storage.s3]
endpoint = "$S3_ENDPOINT"
region = "$S3_REGION"
bucket = "$S3_BUCKET_NAME"
prefix = "skiff"
access_key_id = "$AWS_ACCESS_KEY_ID"
secret_access_key = "$AWS_SECRET_ACCESS_KEY"
path_style = true
[v2]
enabled = true
token_ttl_secs = 3600
EOF
  for v in $(compgen -e | grep '^SKIFF_' || true); do env_u+=(-u "$v"); done
  printf '%s\n' "$USER_PASS" | env "${env_u[@]}" "$SKIFF_BIN" --config "$dir/registry.toml" \
    user add "$USER_NAME" --email bench@example.com >"$dir/useradd.log" 2>&1 ||
    { tail -n 5 "$dir/useradd.log" >&2; return 1; }
  : >"$dir/out.log"
  e2e_spawn "$dir/out.log" env "${env_u[@]}" "$SKIFF_BIN" --config "$dir/registry.toml" serve
  S3_SKIFF_PID=$E2E_SPAWNED_PID
  wait_for_pid "$S3_SKIFF_PID" 60 grep -q 'skiff listening on http://' "$dir/out.log" ||
    { tail -n 20 "$dir/out.log" >&2; return 1; }
  S3_SB=$(grep -o 'skiff listening on http://[0-9.:]*' "$dir/out.log" | head -n 1 | sed 's/.*on //')
  wait_for_pid "$S3_SKIFF_PID" 30 curl -sf -m 2 -o /dev/null "$S3_SB/v1/_ping" ||
    { tail -n 20 "$dir/out.log" >&2; return 1; }
}

# s3_rss2_start / s3_rss2_stop TAG KEY — the peak RSS of each server over a phase, recorded as
# KEY: the kernel's own high-water mark (VmHWM), reset at the start of the phase by writing 5
# to /proc/PID/clear_refs (Linux >= 4.0), so no peak between two samples is missed. Where the
# reset is refused, a 100 ms sampler of VmRSS (rss_start) stands in.
s3_rss2_start() {
  local side
  S3_RSS_PIDS=()
  for side in "${S3_SIDES[@]}"; do
    if echo 5 2>/dev/null >"/proc/${S3_PID[$side]}/clear_refs"; then
      S3_RSS_HOW[$side]=hwm
    else
      S3_RSS_HOW[$side]=sampled
      rss_start "${S3_PID[$side]}" "$T/rss.s3.$side.$1"
      S3_RSS_PIDS+=("$RSS_PID")
    fi
  done
}
s3_rss2_stop() {
  local p side kib
  for p in "${S3_RSS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for side in "${S3_SIDES[@]}"; do
    if [ "${S3_RSS_HOW[$side]}" = hwm ]; then kib=$(status_kib "${S3_PID[$side]}" VmHWM)
    else kib=$(cat "$T/rss.s3.$side.$1" 2>/dev/null || true); fi
    if [ "${kib:-0}" -gt 0 ]; then rec "$2" "$side" "$(kib_to_mib "$kib")"
    else rec "$2" "$side" "NA:no RSS reading"; fi
  done
}

# s3_order R — the sides in the order repeat R runs them (swapped every repeat).
s3_order() { if [ $(($1 % 2)) = 1 ]; then echo "${S3_SIDES[*]}"; else echo "${S3_SIDES[1]:-} ${S3_SIDES[0]}" ; fi; }

# s3_push_one KEY SIDE NAME SIZE / s3_pull_one — one timed push (pull) of blob NAME of SIDE.
s3_push_one() {
  local key=$1 side=$2 name=$3 size=$4 t0 auth=()
  [ "$side" = skiff ] && auth=(-u "$USER_NAME:$USER_PASS")
  t0=$EPOCHREALTIME
  if v2_push "${S3_URL[$side]}" "$USER_NAME/s3big" "$DATA/$name" "${DIG[$name]}" "${auth[@]}"; then
    rec "$key" "$side" "$(mbps "$size" "$(secs_since "$t0")")"
  else rec "$key" "$side" "NA:push failed"; fi
}
s3_pull_one() {
  local key=$1 side=$2 name=$3 size=$4 t0
  t0=$EPOCHREALTIME
  if v2_pull "${S3_URL[$side]}" "$USER_NAME/s3big" "${DIG[$name]}" "$size"; then
    rec "$key" "$side" "$(mbps "$size" "$(secs_since "$t0")")"
  else rec "$key" "$side" "NA:pull failed"; fi
}

s3_rows() {
  local r side specs=() name t0 skiff_na=""
  say "S3: Garage (scripts/garage, free ports) in $T/garage"
  GARAGE_PORT_BASE=auto "$HERE/garage" start "$T/garage" ||
    { echo "bench: Garage did not start" >&2; exit 1; }
  e2e_on_cleanup "'$HERE/garage' stop '$T/garage'"
  "$HERE/garage" bucket "$T/garage" "$S3_BUCKET_NAME"
  # shellcheck disable=SC1091 # written by scripts/garage
  source "$T/garage/env"
  GARAGE_VER=$(garage_version)

  # The fs rows' input is not needed any more (tmpfs room for this one).
  find "$DATA" -mindepth 1 -maxdepth 1 -type f ! -name digests -delete 2>/dev/null || true
  say "S3: generating $REPS x 2 x $((S3_BLOB >> 20)) MiB + 2 x $((S3_HUGE >> 30)) GiB of random data"
  for ((r = 1; r <= REPS; r++)); do specs+=("s3-skiff-$r:$S3_BLOB" "s3-dist-$r:$S3_BLOB"); done
  specs+=("s3-skiff-huge:$S3_HUGE" "s3-dist-huge:$S3_HUGE")
  python3 "$BD/benchlib.py" gen "$DATA" "${specs[@]}" >"$DATA/s3.digests"
  while read -r name _ dig _; do DIG[$name]=$dig; done <"$DATA/s3.digests"

  declare -gA S3_URL=() S3_PID=() S3_RSS_HOW=()
  S3_SIDES=(dist)
  say "S3: Distribution on Garage (s3 driver, rootdirectory /dist)"
  s3_start_distribution "$T/dist-s3" || { echo "bench: Distribution on Garage did not start" >&2; exit 1; }
  S3_URL[dist]=$S3_DB S3_PID[dist]=$S3_DIST_PID
  say "S3: Skiff on Garage ([storage] driver = \"s3\", prefix skiff)"
  if s3_start_skiff "$T/skiff-s3"; then
    S3_URL[skiff]=$S3_SB S3_PID[skiff]=$S3_SKIFF_PID
    S3_SIDES=(skiff dist)
    setup_manifest "$S3_SB" -u "$USER_NAME:$USER_PASS" || skiff_na="manifest push failed"
  else
    skiff_na="Skiff did not start with driver = \"s3\""
  fi
  if [ -n "$skiff_na" ]; then
    say "S3: $skiff_na: Skiff's S3 rows are n/a"
    S3_SIDES=(dist)
    for k in s3_rss_idle s3_push s3_pull_first s3_pull s3_rss_push s3_rss_pull s3_push1g s3_pull1g s3_rss_push1g \
      s3_rss_pull1g s3_man_get_rps s3_man_get_p50 s3_man_get_p99; do rec "$k" skiff "NA:$skiff_na"; done
  fi
  setup_manifest "$S3_DB" || { echo "bench: manifest setup on Distribution (S3) failed" >&2; exit 1; }
  sleep 1
  for side in "${S3_SIDES[@]}"; do rec s3_rss_idle "$side" "$(kib_to_mib "$(status_kib "${S3_PID[$side]}" VmRSS)")"; done

  # The 1 GiB push comes before any pull, so its memory row is not the pulls' high-water mark.
  say "S3: v2 blob push $((S3_BLOB >> 20)) MiB x $REPS (${S3_SIDES[*]}, alternating)"
  s3_rss2_start push
  for ((r = 1; r <= REPS; r++)); do
    for side in $(s3_order "$r"); do s3_push_one s3_push "$side" "s3-$side-$r" "$S3_BLOB"; done
  done
  s3_rss2_stop push s3_rss_push
  say "S3: v2 blob push of $((S3_HUGE >> 30)) GiB, once (memory against blob size)"
  s3_rss2_start push1g
  for side in "${S3_SIDES[@]}"; do s3_push_one s3_push1g "$side" "s3-$side-huge" "$S3_HUGE"; done
  s3_rss2_stop push1g s3_rss_push1g

  # First read of each blob: from Garage on both sides (Skiff's leaves its node copy, see
  # [storage.s3] cache_mib). Then the same blobs again: Skiff from that copy, Distribution
  # from Garage, as every time.
  say "S3: v2 blob pull $((S3_BLOB >> 20)) MiB x $REPS, first read of each blob, then again"
  s3_rss2_start pull
  for ((r = 1; r <= REPS; r++)); do
    for side in $(s3_order "$r"); do s3_pull_one s3_pull_first "$side" "s3-$side-$r" "$S3_BLOB"; done
  done
  for ((r = 1; r <= REPS; r++)); do
    for side in $(s3_order "$r"); do s3_pull_one s3_pull "$side" "s3-$side-$r" "$S3_BLOB"; done
  done
  s3_rss2_stop pull s3_rss_pull
  say "S3: v2 blob pull of $((S3_HUGE >> 30)) GiB, once, first read (memory against blob size)"
  s3_rss2_start pull1g
  for side in "${S3_SIDES[@]}"; do s3_pull_one s3_pull1g "$side" "s3-$side-huge" "$S3_HUGE"; done
  s3_rss2_stop pull1g s3_rss_pull1g

  say "S3: manifest GET x $REPS (wrk -c64, anonymous)"
  for ((r = 1; r <= REPS; r++)); do
    for side in $(s3_order "$r"); do
      load_run s3_man_get "$side" GET "${S3_URL[$side]}/v2/$USER_NAME/app/manifests/latest" "" p50
    done
  done

  for side in "${S3_SIDES[@]}"; do e2e_kill_group "${S3_PID[$side]}"; done
  "$HERE/garage" stop "$T/garage"
  rm -f "$DATA"/s3-*
}

# garage_version — "garage vX.Y.Z" of the binary scripts/garage runs.
garage_version() {
  local b
  b=$(command -v garage 2>/dev/null || echo "$HOME/.cargo/bin/garage")
  "$b" --version 2>/dev/null | head -n 1 || echo garage
}

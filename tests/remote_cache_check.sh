#!/usr/bin/env bash
# Checks that a build shares through a REAPI remote cache: what one machine built, another
# fetches instead of rebuilding, and the artifacts come out byte-identical.
#
# Starts a throwaway BuildGrid server (PyPI `buildgrid`, installed once into a cached venv on a
# CPython >= 3.13 found on PATH or in pyenv) on 127.0.0.1 with a free port: a disk CAS and
# ByteStream in a temporary folder and an in-memory LRU action cache that accepts writes, in one
# named instance. Then it runs `./pants package ::` twice with the remote cache on, each time in
# its own copy of the repository (a different path, as on another machine) with its own fresh,
# empty local store, so nothing can come from a local cache:
#   machine A: every process runs and its result is written to the remote cache;
#   machine B: every cacheable process must be a remote cache hit.
# It parses Pants' --stats-log counters, prints the hit count, and compares the sha256 of every
# file the two builds wrote to dist/ (function and layer ZIPs, manifests, the plugin wheel).
# Pants' named caches (downloads only) are shared, as a CI cache would share them.
#
# Usage: tests/remote_cache_check.sh [--worktree]
#   default     build the committed tree (git archive HEAD)
#   --worktree  build the working tree instead (tracked and untracked, not ignored, files)
#
# Environment:
#   BUILDGRID_PYTHON  a CPython >= 3.13 for BuildGrid (default: searched on PATH, then pyenv)
#   BUILDGRID_CACHE   where the BuildGrid venv is kept
#                     (default: ${XDG_CACHE_HOME:-~/.cache}/pants-powertools/buildgrid)
#   KEEP_TMP=1        keep the temporary folder (logs, both copies, the CAS) for inspection
#
# Runs Pants without pantsd. The server is always stopped on exit.
# Exit status: 0 all hits and identical, 1 a check failed, 2 set-up or a build failed.
set -euo pipefail

BUILDGRID_VERSION="0.9.1"
INSTANCE="pants-powertools"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'remote_cache_check: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}

source_mode="head"
case "${1:-}" in
  "") ;;
  --worktree) source_mode="worktree" ;;
  *) die "unknown argument '$1' (usage: tests/remote_cache_check.sh [--worktree])" ;;
esac

# --- a CPython >= 3.13 for BuildGrid -------------------------------------------------------

probe_python() {
  "$1" -c '
import platform, sys
ok = platform.python_implementation() == "CPython" and sys.version_info[:2] >= (3, 13)
if ok:
    print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], sys.executable))
sys.exit(0 if ok else 1)' 2>/dev/null
}

find_python() {
  local candidate
  for candidate in python3.14 python3.13 python3; do
    if command -v "${candidate}" >/dev/null 2>&1; then
      probe_python "${candidate}" && return 0
    fi
  done
  local pyenv_root="${PYENV_ROOT:-${HOME}/.pyenv}"
  if command -v pyenv >/dev/null 2>&1; then
    pyenv_root="$(pyenv root 2>/dev/null || echo "${pyenv_root}")"
  fi
  # Newest first: the glob sorts 3.13.x before 3.14.x, so walk it backwards.
  local found=("${pyenv_root}"/versions/3.1[3-9]*/bin/python)
  local i
  for ((i = ${#found[@]} - 1; i >= 0; i--)); do
    [[ -x "${found[i]}" ]] && probe_python "${found[i]}" && return 0
  done
  return 1
}

if [[ -n "${BUILDGRID_PYTHON:-}" ]]; then
  python_info="$(probe_python "${BUILDGRID_PYTHON}")" ||
    die "BUILDGRID_PYTHON=${BUILDGRID_PYTHON} is not a CPython >= 3.13, which buildgrid ${BUILDGRID_VERSION} needs."
elif ! python_info="$(find_python)"; then
  die "buildgrid ${BUILDGRID_VERSION} needs a CPython >= 3.13, and none was found on PATH or in pyenv's versions. Install one (for example \`pyenv install 3.13\`) or set BUILDGRID_PYTHON."
fi
python="${python_info#* }"

# --- BuildGrid, installed once per (version, interpreter) ----------------------------------

cache_root="${BUILDGRID_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/pants-powertools/buildgrid}"
venv="${cache_root}/buildgrid-${BUILDGRID_VERSION}-py${python_info%% *}-$(printf '%s' "${python}" | cksum | cut -d' ' -f1)"
if [[ ! -f "${venv}/.installed" ]]; then
  mkdir -p "${cache_root}"
  log "installing buildgrid ${BUILDGRID_VERSION} from PyPI into ${venv} (once) ..."
  # A file lock, so concurrent checks install once; marked complete only at the very end.
  "${python}" - "${venv}" "${BUILDGRID_VERSION}" <<'EOF' || die "installing buildgrid failed (see above)."
import fcntl, shutil, subprocess, sys

venv, version = sys.argv[1:]
with open(venv + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        open(venv + "/.installed").close()
        sys.exit(0)
    except OSError:
        pass
    shutil.rmtree(venv, ignore_errors=True)
    for args in (
        [sys.executable, "-m", "venv", venv],
        [venv + "/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-input", "buildgrid==" + version],
    ):
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout.decode("utf-8", "replace")[-4000:])
            sys.exit(1)
    open(venv + "/.installed", "w").close()
EOF
fi
bgd="${venv}/bin/bgd"
venv_python="${venv}/bin/python"

# --- a temporary folder, and a server that is always stopped -------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/remote-cache-check.XXXXXX")"
server_pid=""
stop_server() {
  [[ -n "${server_pid}" ]] || return 0
  if kill -0 "${server_pid}" 2>/dev/null; then
    kill -TERM "${server_pid}" 2>/dev/null || true
    local waited
    for ((waited = 0; waited < 50; waited++)); do # BuildGrid takes a few seconds to drain.
      kill -0 "${server_pid}" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "${server_pid}" 2>/dev/null || true
  fi
  wait "${server_pid}" 2>/dev/null || true
  server_pid=""
}
build_pid=""
cleanup() {
  if [[ -n "${build_pid}" ]]; then
    kill -TERM "${build_pid}" 2>/dev/null || true
    wait "${build_pid}" 2>/dev/null || true
  fi
  stop_server
  if [[ "${KEEP_TMP:-}" == "1" ]]; then
    log "kept ${tmp}"
  else
    rm -rf "${tmp}"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "${venv_python}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() {
  "${venv_python}" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}

write_config() {
  cat >"${tmp}/bgd.yml" <<EOF
# Remote cache only (no execution): CAS + ByteStream on disk, an LRU action cache in memory.
# BuildGrid's default limit of concurrent RPCs (5 per core) is below what Pants opens at once;
# writes beyond it fail with "ResourceExhausted: Concurrent RPC limit exceeded!".
thread-pool-size: 32
maximum-concurrent-rpcs: 1024
server:
  - !channel
    address: "127.0.0.1:$1"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas
    path: ${tmp}/cas
caches:
  - !lru-action-cache &action-cache
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ${INSTANCE}
    services:
      - !action-cache
        cache: *action-cache
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
EOF
}

start_server() {
  local attempt port waited
  mkdir -p "${tmp}/cas"
  for attempt in 1 2 3; do # The free port may be taken between choosing and binding it.
    port="$(free_port)"
    write_config "${port}"
    "${bgd}" server start "${tmp}/bgd.yml" >"${tmp}/server.log" 2>&1 &
    server_pid=$!
    for ((waited = 0; waited < 300; waited++)); do
      kill -0 "${server_pid}" 2>/dev/null || break
      if port_open "${port}"; then
        server_port="${port}"
        return 0
      fi
      sleep 0.2
    done
    log "BuildGrid did not come up on port ${port} (attempt ${attempt}):"
    tail -n 20 "${tmp}/server.log" >&2
    stop_server
  done
  die "could not start BuildGrid (config: ${tmp}/bgd.yml)."
}

# --- the builds ---------------------------------------------------------------------------

copy_repo() {
  local dest="$1"
  mkdir -p "${dest}"
  if [[ "${source_mode}" == "head" ]]; then
    git -C "${repo_root}" archive HEAD | tar -x -C "${dest}"
  else
    (cd "${repo_root}" && git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do if [[ -e "${f}" ]]; then printf '%s\0' "${f}"; fi; done \
      | tar -c -f - --null -T -) | tar -x -C "${dest}"
  fi
}

counter() { # counter LOG NAME -> the value of a --stats-log counter (0 when absent).
  local value
  value="$(sed -n "s/^ *$2: \([0-9][0-9]*\)\$/\1/p" "$1" | tail -n 1)"
  printf '%s' "${value:-0}"
}

build() {
  local machine="$1"
  local root="${tmp}/machine-${machine}"
  copy_repo "${root}/repo"
  log "machine ${machine}: ./pants package :: with an empty local store ..."
  local start=${SECONDS}
  # In the background and waited for, so that a signal reaches the traps without delay.
  (cd "${root}/repo" && exec ./pants --no-pantsd \
    --remote-cache-read --remote-cache-write \
    --remote-store-address="grpc://127.0.0.1:${server_port}" \
    --remote-instance-name="${INSTANCE}" \
    --local-store-dir="${root}/store" \
    --stats-log \
    package ::) >"${root}/pants.log" 2>&1 &
  build_pid=$!
  if ! wait "${build_pid}"; then
    build_pid=""
    tail -n 60 "${root}/pants.log" >&2
    KEEP_TMP=1
    die "machine ${machine}: the build failed (log: ${root}/pants.log)."
  fi
  build_pid=""
  printf -v "elapsed_${machine}" '%s' "$((SECONDS - start))"
  (cd "${root}/repo/dist" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 "${sha256[@]}") \
    >"${root}/sha256"
}

if command -v sha256sum >/dev/null 2>&1; then
  sha256=(sha256sum)
else
  sha256=(shasum -a 256) # macOS
fi
log "starting BuildGrid ${BUILDGRID_VERSION} ..."
start_server
log "BuildGrid serves instance '${INSTANCE}' on grpc://127.0.0.1:${server_port}"

build A
build B

a_log="${tmp}/machine-A/pants.log"
b_log="${tmp}/machine-B/pants.log"
a_requests="$(counter "${a_log}" remote_cache_requests)"
a_writes="$(counter "${a_log}" remote_cache_write_successes)"
a_write_errors="$(counter "${a_log}" remote_cache_write_errors)"
a_local="$(counter "${a_log}" local_execution_requests)"
b_requests="$(counter "${b_log}" remote_cache_requests)"
b_hits="$(counter "${b_log}" remote_cache_requests_cached)"
b_misses="$(counter "${b_log}" remote_cache_requests_uncached)"
b_read_errors="$(counter "${b_log}" remote_cache_read_errors)"
b_saved_ms="$(counter "${b_log}" remote_cache_total_time_saved_ms)"
b_local="$(counter "${b_log}" local_execution_requests)"
b_remote_first="$(counter "${b_log}" remote_cache_speculation_remote_completed_first)"
files="$(wc -l <"${tmp}/machine-A/sha256" | tr -d ' ')"

log "machine A: ${elapsed_A} s; ${a_requests} remote cache lookups, ${a_writes} results written (${a_write_errors} write errors), ${a_local} processes run locally"
log "machine B: ${elapsed_B} s; remote cache hits: ${b_hits} of ${b_requests} (${b_misses} misses, ${b_read_errors} read errors), ${b_saved_ms} ms of process time saved; ${b_local} local processes started (speculation; the remote result won ${b_remote_first} races)"
echo "remote cache hits: ${b_hits}/${b_requests}"

status=0
if [[ "${a_writes}" -eq 0 || "${a_write_errors}" -ne 0 ]]; then
  log "FAILED: machine A wrote ${a_writes} results with ${a_write_errors} errors; see the warnings in ${a_log}."
  grep -i "remote" "${a_log}" | grep -i "warn\|error" | head -n 10 >&2 || true
  status=1
fi
if [[ "${b_requests}" -eq 0 || "${b_hits}" -ne "${b_requests}" ]]; then
  log "FAILED: machine B had ${b_hits} hits for ${b_requests} remote cache lookups."
  status=1
fi
if [[ "$(grep -c '\.zip$' "${tmp}/machine-A/sha256" || true)" -eq 0 ]]; then
  log "FAILED: the build wrote no ZIP; nothing to compare."
  status=1
elif diff -u "${tmp}/machine-A/sha256" "${tmp}/machine-B/sha256" >&2; then
  log "all ${files} files in dist/ are byte-identical on both machines:"
  cat "${tmp}/machine-A/sha256" >&2
else
  log "FAILED: the two machines' dist/ differ (see the diff above)."
  status=1
fi
if [[ "${status}" -eq 0 ]]; then
  log "OK"
else
  KEEP_TMP=1
fi
exit "${status}"

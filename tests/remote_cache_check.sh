#!/usr/bin/env bash
# Checks that a build shares through a REAPI remote cache between two machines that differ as
# a CI runner and a developer's laptop do: what machine A built, machine B fetches instead of
# rebuilding, and the artifacts come out byte-identical.
#
# Starts a throwaway BuildGrid server (PyPI `buildgrid`, installed once into a cached venv on a
# CPython >= 3.13 found on PATH or in pyenv) on 127.0.0.1 with a free port: a disk CAS and
# ByteStream in a temporary folder and an in-memory LRU action cache that accepts writes, in one
# named instance. Then it runs `./pants package ::` with the remote cache on, twice:
#
#   machine A  this machine as it is (its HOME, PATH, PYENV_ROOT, interpreters and Pants
#              bootstrap), a copy of the repository in a temporary folder and an empty local
#              store: every process runs and its result is written to the remote cache.
#   machine B  a second machine on the same OS: another HOME (empty: so another Pants bootstrap
#              venv from PyPI, another pex CLI, other ~/.cache/pants named caches and lmdb
#              store), the user-installed interpreters Pants needs copied to another root and
#              only that copy visible (PYENV_ROOT=<B's HOME>/.pyenv; PATH without any entry under
#              this machine's HOME or pyenv root), another TMPDIR, and the repository checked
#              out at another path of another depth. Environment variables that point into this
#              machine's HOME, and PANTS_*/PEX_*/PYENV*/XDG_*/PYTHON* settings, are not passed.
#              Every cacheable process must be a remote cache hit. B bootstraps Pants into its
#              HOME first (./pants --version), timed apart from its build.
#
# The interpreters copied for B are those of MACHINE_B_PYTHONS (default "3.9 3.12 3.13": Pants' own
# CPython and the examples' python3.12 and python3.13 runtimes, which compile their bytecode),
# each found as the
# launcher and Pants find them (pythonX.Y on PATH, then pyenv's versions). One installed under
# this machine's HOME or pyenv root is copied (hard links where possible) to
# <B's HOME>/.pyenv/versions/<its folder name> and must run from there; one installed elsewhere
# (/usr, /usr/local) is a system package that machine B has at the same path, and stays visible.
# Pip's download cache is shared (as a CI cache would share it): it holds downloads only.
#
# It prints both machines' wall times and B's remote cache counters (--stats-log), the
# descriptions of the processes that missed on B (from Pants' debug log of the remote cache),
# and compares the sha256 of every file the two builds wrote to dist/ (function and layer ZIPs,
# manifests, the plugin's wheel and sdist); for a ZIP or tarball that differs it lists the
# entries that differ (name, timestamp, mode, size, CRC).
#
# Usage: tests/remote_cache_check.sh [--worktree] [--explain]
#   default     build the committed tree (git archive HEAD)
#   --worktree  build the working tree instead (tracked and untracked, not ignored, files)
#   --explain   keep every local sandbox on both machines and, for each process that missed on
#               B, diff its argv and environment (the sandbox's __run.sh) against machine A's
#
# Environment:
#   BUILDGRID_PYTHON   a CPython >= 3.13 for BuildGrid (default: searched on PATH, then pyenv)
#   BUILDGRID_CACHE    where the BuildGrid venv is kept
#                      (default: ${XDG_CACHE_HOME:-~/.cache}/pants-powertools/buildgrid)
#   MACHINE_B_PYTHONS  CPython versions (X.Y) machine B gets (default: "3.9 3.12 3.13")
#   ALLOWED_MISSES     an extended regex: B's misses of processes whose description matches it
#                      are listed but do not fail the check. Default: the two processes of Pants'
#                      own `python_distribution` build of the plugin wheel, whose inputs carry
#                      Pants' interpreter path (not the plugin's to change); set it empty to
#                      allow none.
#   KEEP_TMP=1         keep the temporary folder (logs, both machines, the CAS) for inspection
#
# Runs Pants without pantsd. The server is always stopped and the temporary folder (both
# machines' HOMEs, interpreter copies, checkouts and stores) removed on exit, unless a check
# failed or KEEP_TMP=1.
# Exit status: 0 all hits and identical, 1 a check failed, 2 set-up or a build failed.
set -euo pipefail

# Pants 2.17's own wheel build (build_backend.pex, setuptools) keys on its interpreter's path.
ALLOWED_MISSES="${ALLOWED_MISSES-^(Building build_backend\.pex .*|Run setuptools_reproducible for pants-plugins:dist)$}"

BUILDGRID_VERSION="0.9.1"
INSTANCE="pants-powertools"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'remote_cache_check: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}

source_mode="head"
explain=0
for arg in "$@"; do
  case "${arg}" in
    --worktree) source_mode="worktree" ;;
    --explain) explain=1 ;;
    *) die "unknown argument '${arg}' (usage: tests/remote_cache_check.sh [--worktree] [--explain])" ;;
  esac
done

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
    # Pants and pex leave some files read-only (named caches, venvs).
    rm -rf "${tmp}" 2>/dev/null || { chmod -R u+w "${tmp}" 2>/dev/null; rm -rf "${tmp}"; }
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

# --- the two machines ---------------------------------------------------------------------

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

host_home="${HOME%/}"
host_pyenv_root="${PYENV_ROOT:-${HOME}/.pyenv}"
if command -v pyenv >/dev/null 2>&1; then
  host_pyenv_root="$(pyenv root 2>/dev/null || echo "${host_pyenv_root}")"
fi
host_pyenv_root="${host_pyenv_root%/}"

# under_host_home PATH: is PATH inside this machine's HOME or pyenv root (machine B has neither)?
under_host_home() {
  case "$1" in
    "${host_pyenv_root}" | "${host_pyenv_root}"/*) return 0 ;;
  esac
  [[ -n "${host_home}" && "${host_home}" != "/" ]] || return 1
  case "$1" in
    "${host_home}" | "${host_home}"/*) return 0 ;;
  esac
  return 1
}

# Prints "<base prefix>\t<version>" of a CPython X.Y found as the launcher and Pants find one.
find_cpython() {
  local want="$1" candidate info
  local probe='
import platform, sys
want = tuple(int(p) for p in sys.argv[1].split("."))
if platform.python_implementation() != "CPython" or sys.version_info[:2] != want:
    sys.exit(1)
print("%s\t%s" % (sys.base_prefix, platform.python_version()))'
  if command -v "python${want}" >/dev/null 2>&1 &&
    info="$("python${want}" -c "${probe}" "${want}" 2>/dev/null)"; then
    printf '%s\n' "${info}"
    return 0
  fi
  local found=("${host_pyenv_root}"/versions/"${want}".*/bin/python"${want}")
  local i
  for ((i = ${#found[@]} - 1; i >= 0; i--)); do
    if [[ -x "${found[i]}" ]] && info="$("${found[i]}" -c "${probe}" "${want}" 2>/dev/null)"; then
      printf '%s\n' "${info}"
      return 0
    fi
  done
  return 1
}

setup_machine_b() {
  local root="${tmp}/machine-B"
  b_home="${root}/home/developer"
  b_pyenv="${b_home}/.pyenv"
  b_repo="${b_home}/work/checkouts/pants-powertools"
  mkdir -p "${b_pyenv}/versions" "${root}/tmp"

  local want info prefix version dest
  for want in ${MACHINE_B_PYTHONS:-3.9 3.12 3.13}; do
    info="$(find_cpython "${want}")" ||
      die "no CPython ${want} found on PATH or in ${host_pyenv_root}/versions (set MACHINE_B_PYTHONS to the versions the build needs)."
    prefix="${info%%$'\t'*}"
    version="${info#*$'\t'}"
    if ! under_host_home "${prefix}"; then
      log "machine B: CPython ${version} at ${prefix} is a system installation; B sees it at the same path"
      continue
    fi
    dest="${b_pyenv}/versions/$(basename "${prefix}")"
    [[ ! -e "${dest}" ]] || continue
    # Hard links: fast and free (the copy is only ever added to, never edited in place).
    cp -R -l "${prefix}" "${dest}" 2>/dev/null || { rm -rf "${dest}"; cp -R -p "${prefix}" "${dest}"; }
    # A copied CPython must run from its new place, with its own standard library.
    local exe="${dest}/bin/python${want}" got
    got="$(env -i PATH=/usr/bin:/bin "${exe}" -S -c '
import sys, os
import encodings, zlib, ssl, ctypes, sqlite3, venv
print(os.path.realpath(sys.prefix))' 2>&1)" ||
      die "the copy of CPython ${version} (${prefix} -> ${dest}) does not run from its new place: ${got}"
    [[ "${got}" == "$(cd "${dest}" && pwd -P)" ]] ||
      die "the copy of CPython ${version} at ${dest} still takes its standard library from ${got}."
    log "machine B: CPython ${version} copied from ${prefix} to ${dest}"
  done

  # PATH: this machine's PATH without anything under its HOME or pyenv root (pyenv shims,
  # ~/.local/bin, ~/.cargo/bin, ...).
  local entry IFS=':'
  b_path=""
  for entry in ${PATH}; do
    [[ -n "${entry}" ]] || continue
    under_host_home "${entry}" && continue
    b_path="${b_path:+${b_path}:}${entry}"
  done
  unset IFS

  # The environment: this machine's, less what points into its HOME or configures Pants, pex,
  # pyenv or Python; plus B's own HOME, PATH, PYENV_ROOT and TMPDIR.
  b_env=()
  local name value
  while IFS= read -r name; do
    case "${name}" in
      HOME | PATH | PWD | OLDPWD | SHLVL | _ | TMPDIR | PANTS_* | PEX_* | PYENV* | XDG_* | \
        PYTHON* | VIRTUAL_ENV* | CONDA* | BASH_FUNC_* | BUILDGRID_* | MACHINE_B_* | ALLOWED_MISSES | KEEP_TMP) continue ;;
    esac
    value="${!name-}"
    if [[ -n "${host_home}" && "${host_home}" != "/" && "${value}" == *"${host_home}"* ]]; then
      continue
    fi
    b_env+=("${name}=${value}")
  done < <(compgen -e)
  b_env+=(
    "HOME=${b_home}"
    "PATH=${b_path}"
    "PYENV_ROOT=${b_pyenv}"
    "TMPDIR=${root}/tmp"
    # Downloads only, keyed by URL and hash: sharing it spares B fetching Pants from PyPI again.
    "PIP_CACHE_DIR=${pip_cache_dir}"
  )
}

counter() { # counter LOG NAME -> the value of a --stats-log counter (0 when absent).
  local value
  value="$(sed -n "s/^ *$2: \([0-9][0-9]*\)\$/\1/p" "$1" | tail -n 1)"
  printf '%s' "${value:-0}"
}

# run_pants MACHINE LOG ARGS...: ./pants in MACHINE's checkout and environment, in the background
# and waited for (so that a signal reaches the traps without delay). Fails the check on error.
run_pants() {
  local machine="$1" logfile="$2"
  shift 2
  local repo
  if [[ "${machine}" == "A" ]]; then
    repo="${tmp}/machine-A/repo"
    (cd "${repo}" && exec ./pants "$@") >"${logfile}" 2>&1 &
  else
    repo="${b_repo}"
    (cd "${repo}" && exec env -i "${b_env[@]}" ./pants "$@") >"${logfile}" 2>&1 &
  fi
  build_pid=$!
  if ! wait "${build_pid}"; then
    build_pid=""
    tail -n 60 "${logfile}" >&2
    KEEP_TMP=1
    die "machine ${machine}: ./pants $* failed (log: ${logfile})."
  fi
  build_pid=""
}

build() {
  local machine="$1"
  local root="${tmp}/machine-${machine}"
  local repo="${root}/repo"
  [[ "${machine}" == "A" ]] || repo="${b_repo}"
  copy_repo "${repo}"
  local start=${SECONDS}
  if [[ "${machine}" == "B" ]]; then
    # B's HOME is empty: ./pants installs Pants from PyPI and builds the pex CLI first. Done
    # and timed on its own, so that B's build time compares with A's (whose bootstrap is this
    # machine's, normally done already).
    log "machine B: bootstrapping Pants into its own HOME (./pants --version) ..."
    run_pants B "${root}/bootstrap.log" --no-pantsd --version
    bootstrap_B="$((SECONDS - start))"
  fi

  local args=(
    --no-pantsd
    --remote-cache-read --remote-cache-write
    --remote-store-address="grpc://127.0.0.1:${server_port}"
    --remote-instance-name="${INSTANCE}"
    --stats-log
    # The remote cache logs each hit and miss, with the process description, at debug level.
    "--log-levels-by-target={\"remote::remote_cache\": \"debug\", \"process_execution::remote_cache\": \"debug\"}"
  )
  # A starts from an empty local store of its own (its HOME is this machine's, whose store
  # may already hold the results); B's HOME is new, so its default store is empty anyway.
  [[ "${machine}" == "B" ]] || args+=(--local-store-dir="${root}/store")
  if [[ "${explain}" == "1" ]]; then
    args+=(--keep-sandboxes=always --local-execution-root-dir="${root}/sandboxes")
    mkdir -p "${root}/sandboxes"
  fi
  log "machine ${machine}: ./pants package :: with an empty local store ..."
  start=${SECONDS}
  run_pants "${machine}" "${root}/pants.log" "${args[@]}" package ::
  printf -v "elapsed_${machine}" '%s' "$((SECONDS - start))"
  (cd "${repo}/dist" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 "${sha256[@]}") \
    >"${root}/sha256"
  ln -s "${repo}/dist" "${root}/dist"
}

# Lists the entries of two ZIPs or tarballs that differ (the reason two archives differ).
diff_archives() {
  "${venv_python}" - "$1" "$2" <<'EOF'
import sys, tarfile, zipfile


def entries(path):
    if path.endswith((".zip", ".whl")):
        with zipfile.ZipFile(path) as z:
            return {
                i.filename: "date=%04d-%02d-%02dT%02d:%02d:%02d mode=%o size=%d crc=%08x"
                % (*i.date_time, i.external_attr >> 16, i.file_size, i.CRC)
                for i in z.infolist()
            }, ""
    if ".tar" in path:
        with open(path, "rb") as f:
            head = f.read(10)
        header = ""
        if head[:2] == b"\x1f\x8b":
            header = "gzip header mtime=%d" % int.from_bytes(head[4:8], "little")
        with tarfile.open(path) as t:
            return {
                m.name: "mtime=%d mode=%o uid=%d/%s gid=%d/%s size=%d"
                % (m.mtime, m.mode, m.uid, m.uname, m.gid, m.gname, m.size)
                for m in t.getmembers()
            }, header
    return None, ""


a, b = sys.argv[1:]
ea, ha = entries(a)
eb, hb = entries(b)
if ea is None:
    sys.exit(0)
if ha != hb:
    print("    A %s\n    B %s" % (ha, hb))
if list(ea) != list(eb):
    print("    entry order or names differ")
shown = 0
for name in sorted(set(ea) | set(eb)):
    if ea.get(name) != eb.get(name):
        if shown < 8:
            print("    %s\n      A %s\n      B %s" % (name, ea.get(name, "(absent)"), eb.get(name, "(absent)")))
        shown += 1
if shown > 8:
    print("    ... and %d more entries" % (shown - 8))
EOF
}

# The processes that missed on B: descriptions from the remote cache's debug log.
misses_of() {
  sed -n 's/.*remote cache miss for: "\(.*\)" digest=.*/\1/p; t; s/.*remote cache miss for: \(.*\)$/\1/p' "$1" |
    LC_ALL=C sort | uniq -c
}

# --explain: for each description that missed on B, what differs from A's process of the same
# description: environment and argv (from the kept sandboxes' __run.sh, sandbox paths masked),
# or else the files in the sandbox (inputs and, after the run, outputs; named caches excluded).
explain_misses() {
  local machine
  for machine in A B; do
    # "[INFO] Preserving local process execution dir DIR for DESCRIPTION"
    sed -n 's/.*Preserving local process execution dir \([^ ]*\) for \(.*\)$/\2\t\1/p' \
      "${tmp}/machine-${machine}/pants.log" >"${tmp}/machine-${machine}/sandboxes.tsv"
  done
  misses_of "${tmp}/machine-B/pants.log" | sed 's/^ *[0-9]* //' >"${tmp}/misses.txt"
  "${venv_python}" - "${tmp}" >&2 <<'EOF'
import difflib, hashlib, os, shlex, sys

tmp = sys.argv[1]


def sandboxes(machine):
    found = {}
    with open(os.path.join(tmp, "machine-" + machine, "sandboxes.tsv")) as f:
        for line in f:
            desc, _, path = line.rstrip("\n").rpartition("\t")
            found.setdefault(desc, path)
    return found


def command(path):
    with open(os.path.join(path, "__run.sh")) as f:
        line = [l for l in f.read().splitlines() if l.startswith("env -i ")][0]
    # __run.sh quotes with bash's $'...', which shlex does not know.
    words = shlex.split(line.replace(path, "SANDBOX").replace("$'", "'"))[2:]
    env = {}
    while words and "=" in words[0] and not words[0].startswith(("/", ".")):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env, words


def files(path):
    out = {}
    for root, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel == "__run.sh" or os.path.islink(full):
                continue
            with open(full, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


a, b = sandboxes("A"), sandboxes("B")
with open(os.path.join(tmp, "misses.txt")) as f:
    misses = [l.rstrip("\n") for l in f if l.strip()]
for desc in misses:
    print('remote_cache_check:   why "%s" missed:' % desc)
    if desc not in a or desc not in b:
        print("    (no kept sandbox of that description on both machines)")
        continue
    try:
        (env_a, argv_a), (env_b, argv_b) = command(a[desc]), command(b[desc])
    except (OSError, IndexError) as e:
        print("    (cannot read __run.sh: %s)" % e)
        continue
    shown = False
    for key in sorted(set(env_a) | set(env_b)):
        if env_a.get(key) != env_b.get(key):
            print("    env %s\n      A %s\n      B %s" % (key, env_a.get(key, "(unset)"), env_b.get(key, "(unset)")))
            shown = True
    for i in range(max(len(argv_a), len(argv_b))):
        x = argv_a[i] if i < len(argv_a) else "(none)"
        y = argv_b[i] if i < len(argv_b) else "(none)"
        if x != y:
            print("    argv[%d]\n      A %s\n      B %s" % (i, x, y))
            shown = True
    if shown:
        continue
    print("    same argv and env; files that differ in the sandbox (inputs, and outputs):")
    fa, fb = files(a[desc]), files(b[desc])
    differ = sorted(n for n in set(fa) | set(fb) if fa.get(n) != fb.get(n))
    for name in differ[:12]:
        print("      %s" % name)
        try:
            with open(os.path.join(a[desc], name)) as f:
                text_a = f.read(65536).splitlines()
            with open(os.path.join(b[desc], name)) as f:
                text_b = f.read(65536).splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # Absent on one side, or binary.
        changed = [l for l in difflib.unified_diff(text_a, text_b, "A", "B", lineterm="", n=0)
                   if l[:1] in "+-" and l[:3] not in ("---", "+++")]
        for line in changed[:8]:
            print("        %s" % line[:400])
    if len(differ) > 12:
        print("      ... and %d more" % (len(differ) - 12))
EOF
}

if command -v sha256sum >/dev/null 2>&1; then
  sha256=(sha256sum)
else
  sha256=(shasum -a 256) # macOS
fi
pip_cache_dir="$("${venv_python}" -m pip cache dir 2>/dev/null || true)"
[[ -n "${pip_cache_dir}" ]] || pip_cache_dir="${tmp}/pip-cache"

setup_machine_b
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

log "machine A: package :: ${elapsed_A} s; ${a_requests} remote cache lookups, ${a_writes} results written (${a_write_errors} write errors), ${a_local} processes run locally"
log "machine B: bootstrap ${bootstrap_B} s, package :: ${elapsed_B} s; remote cache hits: ${b_hits} of ${b_requests} (${b_misses} misses, ${b_read_errors} read errors), ${b_saved_ms} ms of process time saved; ${b_local} local processes started (the remote result won ${b_remote_first} races)"
echo "machine A: package :: ${elapsed_A} s"
echo "machine B: package :: ${elapsed_B} s (before it, its Pants bootstrap: ${bootstrap_B} s)"
echo "remote cache hits: ${b_hits}/${b_requests}, misses: ${b_misses}"

status=0
if [[ "${a_writes}" -eq 0 || "${a_write_errors}" -ne 0 ]]; then
  log "FAILED: machine A wrote ${a_writes} results with ${a_write_errors} errors; see the warnings in ${a_log}."
  grep -i "remote" "${a_log}" | grep -i "warn\|error" | head -n 10 >&2 || true
  status=1
fi
# Misses whose description matches ALLOWED_MISSES (an extended regex; unset: none) are reported
# but do not fail the check; every other miss does, and so does any miss the debug log does not
# name.
misses_of "${b_log}" >"${tmp}/misses-counted.txt"
allowed=0
if [[ -n "${ALLOWED_MISSES:-}" ]]; then
  # Through the environment: awk -v would take the regex's backslashes as escapes.
  allowed="$(ALLOWED_MISSES="${ALLOWED_MISSES}" awk '{ n = $1; sub(/^ *[0-9]+ /, "")
    if ($0 ~ ENVIRON["ALLOWED_MISSES"]) s += n } END { print s + 0 }' "${tmp}/misses-counted.txt")"
fi
if [[ "${b_requests}" -eq 0 || "${b_hits}" -ne "$((b_requests - allowed))" ||
  "${b_misses}" -ne "${allowed}" || "${b_read_errors}" -ne 0 ]]; then
  log "FAILED: machine B had ${b_hits} hits and ${b_misses} misses for ${b_requests} remote cache lookups${ALLOWED_MISSES:+ (${allowed} of them allowed by ALLOWED_MISSES)}. The processes that missed (count, description):"
  sed 's/^/    /' "${tmp}/misses-counted.txt" >&2
  if [[ "${explain}" == "1" ]]; then
    explain_misses
  else
    log "rerun with --explain to diff each missing process's argv and environment against A's."
  fi
  status=1
elif [[ "${allowed}" -ne 0 ]]; then
  log "machine B: ${allowed} miss(es) allowed by ALLOWED_MISSES='${ALLOWED_MISSES}':"
  sed 's/^/    /' "${tmp}/misses-counted.txt" >&2
fi
if [[ "$(grep -c '\.zip$' "${tmp}/machine-A/sha256" || true)" -eq 0 ]]; then
  log "FAILED: the build wrote no ZIP; nothing to compare."
  status=1
elif diff -u "${tmp}/machine-A/sha256" "${tmp}/machine-B/sha256" >&2; then
  log "all ${files} files in dist/ are byte-identical on both machines:"
  cat "${tmp}/machine-A/sha256" >&2
else
  log "FAILED: the two machines' dist/ differ (see the diff above); what differs inside:"
  while read -r _ file; do
    if [[ -f "${tmp}/machine-B/dist/${file}" ]] &&
      ! cmp -s "${tmp}/machine-A/dist/${file}" "${tmp}/machine-B/dist/${file}"; then
      log "  ${file}:"
      diff_archives "${tmp}/machine-A/dist/${file}" "${tmp}/machine-B/dist/${file}" >&2 || true
    fi
  done <"${tmp}/machine-A/sha256"
  status=1
fi
if [[ "${status}" -eq 0 ]]; then
  log "OK"
else
  KEEP_TMP=1
fi
exit "${status}"

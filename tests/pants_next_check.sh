#!/usr/bin/env bash
# Early warning of Pants API drift: packages the example Lambda ZIPs with the next Pants on PyPI
# (2.18.0a0, the last Pants release published there) and requires them byte-identical to the
# ZIPs Pants 2.17.1 builds from the same commit.
#
# Usage: tests/pants_next_check.sh [PANTS_VERSION]     (default: 2.18.0a0)
#
# Works in a throwaway copy of HEAD (git archive) whose pants.toml names the other version, so
# the repository's own pantsd and dist/ are untouched; `./pants` bootstraps that version from
# PyPI into its usual cache. Only the Lambda targets under src/ are built: the plugin's own
# tests and wheel depend on `pantsbuild.pants` at the running version, whose lock is 2.17.1's.
# The other version's build runs with --no-local-cache, so every process really runs under it;
# 2.17.1's may come from the local cache (tests/check_deterministic.sh shows that cached and
# uncached builds give the same bytes).
# Exit status: 0 identical, 1 different, 2 a build failed.
set -euo pipefail

version="${1:-2.18.0a0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pants-next.XXXXXX")"
# Neither Pants version has a goal that stops pantsd: signal each scratch checkout's daemon.
trap 'cat "${tmp}"/*/.pids/*/pantsd/pid 2>/dev/null | xargs -r kill 2>/dev/null || true; rm -rf "${tmp}"' EXIT

checkout() {
  local dir="$1"
  mkdir -p "${dir}"
  git -C "${repo}" archive HEAD | tar -x -C "${dir}"
}

build() {
  local name="$1" dir="$2"
  shift 2
  echo "pants_next_check: packaging src:: with Pants ${name} ..." >&2
  local start=${SECONDS}
  if ! (cd "${dir}" && NO_SCIE_WARNING=1 ./pants --no-pantsd "$@" package src::) \
      >"${tmp}/${name}.log" 2>&1; then
    tail -n 40 "${tmp}/${name}.log" >&2
    echo "pants_next_check: the build with Pants ${name} failed." >&2
    exit 2
  fi
  (cd "${dir}/dist" && find . -name '*.zip' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) \
    >"${tmp}/${name}.sha256"
  echo "pants_next_check: Pants ${name}: $(wc -l <"${tmp}/${name}.sha256" | tr -d ' ') ZIPs in $((SECONDS - start)) s" >&2
}

checkout "${tmp}/current"
checkout "${tmp}/next"
sed -i.bak -E "s/^pants_version = \"[^\"]+\"/pants_version = \"${version}\"/" "${tmp}/next/pants.toml"
grep -q "^pants_version = \"${version}\"" "${tmp}/next/pants.toml"

# Side by side: each is mostly one Pants start-up without pantsd (a core each).
build current "${tmp}/current" &
current_build=$!
build "${version}" "${tmp}/next" --no-local-cache &
next_build=$!
failed=0
wait "${current_build}" || failed=1
wait "${next_build}" || failed=1
if ((failed)); then
  exit 2
fi

if [[ ! -s "${tmp}/current.sha256" ]]; then
  echo "pants_next_check: Pants 2.17.1 wrote no ZIP; nothing to compare." >&2
  exit 2
fi
if ! diff -u "${tmp}/current.sha256" "${tmp}/${version}.sha256" >&2; then
  echo "pants_next_check: Pants ${version} built other bytes than Pants 2.17.1 (diff above)." >&2
  exit 1
fi
echo "pants_next_check: Pants ${version} and 2.17.1 built the same $(wc -l <"${tmp}/current.sha256" | tr -d ' ') Lambda ZIPs." >&2

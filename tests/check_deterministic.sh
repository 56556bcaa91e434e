#!/usr/bin/env bash
# Checks that packaging is deterministic: builds every package twice with Pants' local process
# cache disabled (so every pex venv, ZIP, manifest and the plugin's own wheel and sdist are
# really re-created) and compares the sha256 of every file the two builds wrote: the Lambda
# ZIPs and their .lambda.json manifests, and the `pants-powertools` wheel and sdist
# (pants-plugins:dist). With the default target (::) it also requires that a wheel and an sdist
# were built, so that they cannot silently drop out of the comparison.
#
# Usage: tests/check_deterministic.sh [TARGET...]     (default: ::)
#
# Each build writes to its own dist folder under dist/ (Pants needs it inside the build root;
# dist/ is git-ignored), so concurrent `pants package` runs into dist/ do not interfere.
# Both folders are removed on exit. Runs Pants without pantsd, as is safe next to other users.
# Exit status: 0 identical, 1 different, other: the build failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ $# -eq 0 ]]; then
  set -- ::
fi

work="dist/.check-deterministic.$$"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}"

build() {
  local run="$1"
  shift
  local distdir="${work}/dist-${run}"
  echo "check_deterministic: build ${run} of 2 (--no-local-cache) ..." >&2
  if ! ./pants --no-pantsd --no-local-cache --pants-distdir="${distdir}" package "$@" \
      >"${work}/build-${run}.log" 2>&1; then
    cat "${work}/build-${run}.log" >&2
    echo "check_deterministic: build ${run} failed." >&2
    exit 2
  fi
  (cd "${distdir}" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) \
    >"${work}/sha256-${run}"
}

build 1 "$@"
build 2 "$@"

count="$(grep -c '\.zip$' "${work}/sha256-1" || true)"
dists="$(grep -c '\.whl$\|\.tar\.gz$' "${work}/sha256-1" || true)"
files="$(wc -l <"${work}/sha256-1" | tr -d ' ')"
if [[ "${count}" -eq 0 ]]; then
  echo "check_deterministic: the build wrote no ZIP; nothing to compare." >&2
  exit 2
fi
if [[ "$*" == "::" && "${dists}" -lt 2 ]]; then
  echo "check_deterministic: the build wrote no wheel and sdist of the plugin (pants-plugins:dist); nothing to compare for them." >&2
  exit 2
fi
if diff -u "${work}/sha256-1" "${work}/sha256-2"; then
  echo "check_deterministic: OK, all ${files} files are byte-identical (${count} ZIP(s) with their manifests, ${dists} wheel/sdist):"
  cat "${work}/sha256-1"
else
  echo "check_deterministic: FAILED, the two builds differ (see the diff above)." >&2
  exit 1
fi

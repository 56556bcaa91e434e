"""Lockfiles locked for exactly the Lambda platforms a resolve deploys to.

Pants' own `generate-lockfiles` locks a python resolve universally (Linux and macOS, any
interpreter), which happily picks a wheel that needs a newer glibc than Lambda's, or one that
has no aarch64 build. A platform lock is a PEX lock (`pex3 lock create --style strict
--complete-platform ...`) with one locked resolve per (runtime, architecture), under a resolve
name this plugin owns, plus a header recording the inputs so packaging can tell when it is stale.

Pants-free: the rules only gather inputs, run pex and call these functions. Why a lock failed,
and which locked pins are yanked, is `lock_failures.py`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

with warnings.catch_warnings():
    # packaging 21.3 (Pants 2.17's) trips pyparsing's deprecation warnings on import.
    warnings.simplefilter("ignore")

from pants_powertools.complete_platforms import complete_platform_filename, complete_platform_json
from pants_powertools.distributions import canonicalize_name

PLATFORM_RESOLVE_SUFFIX = "-lambda-platforms"
LOCK_FORMAT_VERSION = 1

_HEADER_BEGIN = "// --- BEGIN PANTS-POWERTOOLS LOCK METADATA: DO NOT EDIT OR REMOVE ---"
_HEADER_END = "// --- END PANTS-POWERTOOLS LOCK METADATA ---"

Platform = Tuple[str, str]  # (runtime, architecture), e.g. ("python3.12", "arm64")


def platform_resolve_name(python_resolve: str) -> str:
    """The resolve name under which `generate-lockfiles` knows a python resolve's platform lock."""
    return python_resolve + PLATFORM_RESOLVE_SUFFIX


def python_resolve_of(platform_resolve: str) -> Optional[str]:
    if platform_resolve.endswith(PLATFORM_RESOLVE_SUFFIX):
        return platform_resolve[: -len(PLATFORM_RESOLVE_SUFFIX)]
    return None


def platform_lockfile_path(python_lockfile_path: str) -> str:
    """`3rdparty/python/default.lock` -> `3rdparty/python/default.lambda-platforms.lock`."""
    stem = (
        python_lockfile_path[:-5]
        if python_lockfile_path.endswith(".lock")
        else python_lockfile_path
    )
    return stem + ".lambda-platforms.lock"


def generate_command(python_resolve: str) -> str:
    return "pants generate-lockfiles --resolve={}".format(platform_resolve_name(python_resolve))


@dataclass(frozen=True)
class LockInputs:
    """What a platform lock was generated from; packaging compares it with what it needs."""

    python_resolve: str
    requirements: Tuple[str, ...]
    platforms: Tuple[Platform, ...]
    # sha256 of each complete platform file, so a change to the runtime table re-locks.
    platform_digests: Tuple[Tuple[str, str], ...] = ()
    # Complete platforms a target names itself (`complete_platforms`): (file name, JSON text).
    # Only their digests go into the lock header.
    custom_platforms: Tuple[Tuple[str, str], ...] = ()

    @classmethod
    def create(
        cls,
        python_resolve: str,
        requirements: Iterable[str],
        platforms: Iterable[Platform],
        platform_digests: Mapping[str, str] = {},
        custom_platforms: Iterable[Tuple[str, str]] = (),
    ) -> "LockInputs":
        custom = tuple(sorted(set(custom_platforms)))
        digests = dict(platform_digests)
        digests.update((name, _sha256(text)) for name, text in custom)
        return cls(
            python_resolve=python_resolve,
            requirements=tuple(sorted(set(requirements))),
            platforms=tuple(sorted(set(platforms))),
            platform_digests=tuple(sorted(digests.items())),
            custom_platforms=custom,
        )

    def to_json_dict(self) -> Dict[str, object]:
        return {
            "version": LOCK_FORMAT_VERSION,
            "python_resolve": self.python_resolve,
            "requirements": list(self.requirements),
            "platforms": ["{}-{}".format(runtime, arch) for runtime, arch in self.platforms],
            "complete_platform_sha256": dict(self.platform_digests),
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, object]) -> "LockInputs":
        """Raises LockHeaderError naming the field when the header is not what add_header wrote."""
        if not isinstance(data, Mapping):
            raise LockHeaderError("its metadata header is not a JSON object")
        python_resolve = _field(data, "python_resolve", str)
        requirements = _field(data, "requirements", list)
        platform_names = _field(data, "platforms", list)
        digests = data.get("complete_platform_sha256") or {}
        if not isinstance(digests, Mapping):
            raise LockHeaderError(_wrong_type("complete_platform_sha256", "an object", digests))
        for key, items in (("requirements", requirements), ("platforms", platform_names)):
            if not all(isinstance(item, str) for item in items):
                raise LockHeaderError(_wrong_type(key, "a list of strings", items))
        platforms = []
        for item in platform_names:
            runtime, _, arch = item.rpartition("-")
            if not runtime or not arch:
                raise LockHeaderError(
                    "its metadata header field `platforms` has {!r}, "
                    "not `<runtime>-<architecture>`".format(item)
                )
            platforms.append((runtime, arch))
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items()):
            raise LockHeaderError(
                _wrong_type("complete_platform_sha256", "an object of strings", digests)
            )
        return cls(
            python_resolve=python_resolve,
            requirements=tuple(requirements),
            platforms=tuple(platforms),
            platform_digests=tuple(sorted(digests.items())),
        )


def _wrong_type(key: str, expected: str, value: object) -> str:
    return "its metadata header field `{}` should be {}, but is {}".format(
        key, expected, json.dumps(value)[:80]
    )


def _field(data: Mapping[str, object], key: str, kind: type) -> Any:
    if key not in data:
        raise LockHeaderError("its metadata header lacks the field `{}`".format(key))
    value = data[key]
    if not isinstance(value, kind):
        kind_names: Dict[type, str] = {str: "a string", list: "a list"}
        expected = kind_names.get(kind, kind.__name__)
        raise LockHeaderError(_wrong_type(key, expected, value))
    return value


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def complete_platform_digests(platforms: Iterable[Platform]) -> Dict[str, str]:
    """{file name: sha256} of the complete platforms derived for `platforms` (the lock header's)."""
    return {
        complete_platform_filename(runtime, arch): _sha256(complete_platform_json(runtime, arch))
        for runtime, arch in platforms
    }


def custom_platform_filename(json_text: str) -> str:
    """A user's complete platform file, named by its content so an edit means a re-lock."""
    return "custom-{}.json".format(_sha256(json_text)[:16])


def add_header(lock_json: str, inputs: LockInputs) -> str:
    """Prefix a pex lock with the inputs as `//` comment lines, which pex and Pants skip."""
    metadata = json.dumps(inputs.to_json_dict(), indent=2, sort_keys=True)
    lines = [
        "// This lockfile was generated by the pants-powertools plugin for the Lambda platforms",
        "// of the `{}` resolve. To regenerate it, run:".format(inputs.python_resolve),
        "//",
        "//    {}".format(generate_command(inputs.python_resolve)),
        "//",
        _HEADER_BEGIN,
        *("// " + line for line in metadata.splitlines()),
        _HEADER_END,
    ]
    return "\n".join(lines) + "\n" + lock_json.lstrip()


class LockHeaderError(ValueError):
    """A platform lock that cannot be read; the message says what is wrong with it."""


def parse_header(lock_text: str) -> LockInputs:
    """The inputs a platform lock was generated from, after checking the whole file.

    The body is checked too, so a truncated or hand-edited lock fails here, naming the lockfile,
    instead of deep inside pex at install time.
    """
    lines = lock_text.splitlines()
    if _HEADER_BEGIN not in lines:
        raise LockHeaderError("it has no pants-powertools metadata header")
    start = lines.index(_HEADER_BEGIN)
    if _HEADER_END not in lines[start:]:
        raise LockHeaderError("its metadata header is cut off (no end line)")
    end = start + lines[start:].index(_HEADER_END)
    body = "\n".join(
        line[3:] if line.startswith("// ") else line[2:] for line in lines[start + 1 : end]
    )
    try:
        data = json.loads(body)
    except ValueError as e:
        raise LockHeaderError("its metadata header is not valid JSON ({})".format(e))
    inputs = LockInputs.from_json_dict(data)
    _check_body(strip_header(lock_text))
    return inputs


def _check_body(body: str) -> None:
    if not body.strip():
        raise LockHeaderError("it has a header but no lock")
    try:
        data = json.loads(body)
    except ValueError as e:
        raise LockHeaderError("its lock is not valid JSON, perhaps cut off ({})".format(e))
    resolves = data.get("locked_resolves") if isinstance(data, dict) else None
    if not isinstance(resolves, list) or not all(
        isinstance(r, dict) and isinstance(r.get("locked_requirements"), list) for r in resolves
    ):
        raise LockHeaderError("its lock is not a pex lock (no list of `locked_resolves`)")


def damaged_lock_message(lock_path: str, python_resolve: str, reason: str) -> str:
    return (
        "The Lambda platform lockfile {path} is damaged: {reason}.\n\n"
        "Run `{command}` to regenerate it (and commit it).".format(
            path=lock_path, reason=reason, command=generate_command(python_resolve)
        )
    )


def read_lock(lock_text: str, lock_path: str, python_resolve: str) -> LockInputs:
    """parse_header for packaging: any damage raises LockHeaderError with the full message."""
    try:
        inputs = parse_header(lock_text)
    except LockHeaderError as e:
        raise LockHeaderError(damaged_lock_message(lock_path, python_resolve, str(e)))
    if inputs.python_resolve != python_resolve:
        raise LockHeaderError(
            damaged_lock_message(
                lock_path,
                python_resolve,
                "it was generated for the `{}` resolve, not `{}`".format(
                    inputs.python_resolve, python_resolve
                ),
            )
        )
    return inputs


def strip_header(lock_text: str) -> str:
    return "\n".join(line for line in lock_text.splitlines() if not line.startswith("//"))


def locked_versions(lock_text: str) -> Dict[str, Dict[str, str]]:
    """{platform tag of each locked resolve: {project: version}} of a pex lock."""
    data = json.loads(strip_header(lock_text))
    result: Dict[str, Dict[str, str]] = {}
    for index, locked_resolve in enumerate(data.get("locked_resolves", [])):
        tag = locked_resolve.get("platform_tag")
        key = "-".join(tag) if tag else "resolve-{}".format(index)
        result[key] = {
            canonicalize_name(req["project_name"]): req["version"]
            for req in locked_resolve.get("locked_requirements", [])
        }
    return result


def stale_reasons(locked: LockInputs, needed: LockInputs) -> List[str]:
    """Why a platform lock cannot serve `needed`; empty when it can.

    The lock may hold more than needed (another target's requirements or platforms): only what
    is missing or changed makes it stale.
    """
    reasons = []
    missing_reqs = sorted(set(needed.requirements) - set(locked.requirements))
    if missing_reqs:
        reasons.append("requirements not in the lock: " + ", ".join(missing_reqs))
    missing_platforms = sorted(set(needed.platforms) - set(locked.platforms))
    if missing_platforms:
        reasons.append(
            "platforms not in the lock: "
            + ", ".join("{} {}".format(runtime, arch) for runtime, arch in missing_platforms)
        )
    locked_digests = dict(locked.platform_digests)
    missing_custom = sorted(
        name for name, _ in needed.custom_platforms if name not in locked_digests
    )
    if missing_custom:
        reasons.append("complete_platforms files not in the lock: " + ", ".join(missing_custom))
    changed = sorted(
        name
        for name, digest in needed.platform_digests
        if name in locked_digests and locked_digests[name] != digest
    )
    if changed:
        reasons.append("complete platforms changed since locking: " + ", ".join(changed))
    return reasons


def stale_lock_message(
    target: str, lock_path: str, python_resolve: str, reasons: Sequence[str]
) -> str:
    return (
        "The Lambda platform lockfile {lock} cannot build {target}: {reasons}.\n\n"
        "Run `{command}` to regenerate it (and commit it).".format(
            lock=lock_path,
            target=target,
            reasons="; ".join(reasons),
            command=generate_command(python_resolve),
        )
    )


def missing_lock_message(target: str, lock_path: str, python_resolve: str) -> str:
    return (
        "{target} needs the Lambda platform lockfile {lock} for the `{resolve}` resolve, but it "
        "does not exist.\n\nRun `{command}` to generate it (and commit it).".format(
            target=target,
            lock=lock_path,
            resolve=python_resolve,
            command=generate_command(python_resolve),
        )
    )


def version_differences(
    platform_lock_text: str, universal_lock_text: str
) -> List[Tuple[str, str, str, str]]:
    """(project, platform, platform version, universal version) where the two locks disagree.

    Tests run against the universal lock; Lambda gets the platform lock. A difference means
    tests did not exercise the deployed version.
    """
    universal: Dict[str, str] = {}
    for versions in locked_versions(universal_lock_text).values():
        universal.update(versions)
    differences = []
    for platform, versions in sorted(locked_versions(platform_lock_text).items()):
        for project, version in sorted(versions.items()):
            other = universal.get(project)
            if other is not None and other != version:
                differences.append((project, platform, version, other))
    return differences


def version_differences_warning(
    platform_lock_text: str, universal_lock_text: str, universal_lock_path: str
) -> Optional[str]:
    """The warning for `version_differences`; None when the locks agree or cannot be read."""
    try:
        differences = version_differences(platform_lock_text, universal_lock_text)
    except ValueError:
        return None
    if not differences:
        return None
    lines = "\n".join(
        "  {}: {} for {}, {} in {}".format(
            project, platform_version, platform, universal_version, universal_lock_path
        )
        for project, platform, platform_version, universal_version in differences
    )
    return (
        "These distributions are locked at other versions for Lambda than in the resolve's "
        "own lockfile, which tests run against:\n{}\n"
        "Pin them in your requirements to test what you deploy.".format(lines)
    )


# ---------------------------------------------------------------------------------------------
# One resolve per Lambda target
# ---------------------------------------------------------------------------------------------


def resolve_mismatch_message(
    target: str,
    resolve: str,
    resolve_is_default: bool,
    others: Sequence[Tuple[str, str, str]],
) -> str:
    """`others`: (relation, address, resolve), e.g. ("dependency", "3rdparty:reqs#x", "lambda")."""
    unset = (
        " (its `resolve` field is unset, so [python].default_resolve applies)"
        if resolve_is_default
        else ""
    )
    lines = "\n".join(
        "  its {} {} uses the `{}` resolve".format(relation, address, other)
        for relation, address, other in others
    )
    other_resolves = sorted({other for _, _, other in others})
    suggestion = " or ".join('`resolve="{}"`'.format(r) for r in other_resolves)
    return (
        "{target} uses the `{resolve}` resolve{unset}, but\n{lines}\n"
        "A Lambda target and its dependencies and layers are locked and built from one resolve "
        "(one lockfile), or it would be built from the wrong lock. Set {suggestion} on {target}, "
        "or make the others use the `{resolve}` resolve.".format(
            target=target, resolve=resolve, unset=unset, lines=lines, suggestion=suggestion
        )
    )

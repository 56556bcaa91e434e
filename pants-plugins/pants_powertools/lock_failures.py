"""Why a platform lock failed, and which locked pins the index has yanked.

pip (inside pex) words different causes alike, and pex's lock records no yank status: these
functions turn pip's output and what the index holds (`sandbox/index_lookup.py`, run in a
Process) into messages that name the cause, every failing platform and the targets that bring
it in. Pants-free, like `platform_lockfiles.py`, whose lock inputs they describe.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

with warnings.catch_warnings():
    # packaging 21.3 (Pants 2.17's) trips pyparsing's deprecation warnings on import.
    warnings.simplefilter("ignore")
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

from pants_powertools.complete_platforms import (
    compatible_tags,
    complete_platform_filename,
    marker_environment,
)
from pants_powertools.distributions import canonicalize_name
from pants_powertools.platform_lockfiles import LockInputs, strip_header

# ---------------------------------------------------------------------------------------------
# Why locking failed
#
# pip (inside pex) says the same thing for three different causes: "Could not find a version
# that satisfies the requirement X (from versions: ...)". The list holds only versions that
# have a usable file for the platform, so "none" means either no such project or no wheel at
# all, and a missing pin means either no such version or no wheel of it. What the index holds
# (`index_lookup.py`, run in a Process) tells them apart; without it the message says what
# pip's text alone allows.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockPlatform:
    """One platform a resolve is locked for, as the failure messages describe it."""

    label: str  # "python3.12 arm64", or a custom complete platform's file name
    tags: FrozenSet[str]  # compatible wheel tags, "cp312-cp312-manylinux_2_34_aarch64"
    machine: str  # platform_machine as markers see it: "x86_64", "aarch64"


def lock_platforms(inputs: LockInputs) -> List[Tuple[str, LockPlatform]]:
    """(complete platform file name, its description) for each platform `inputs` locks for.

    Derived platforms first, in `inputs`' order, then the custom ones; a custom file that is
    not a complete platform gets no tags and no machine (pex then says what is wrong with it).
    """
    result = []
    for runtime, arch in inputs.platforms:
        result.append(
            (
                complete_platform_filename(runtime, arch),
                LockPlatform(
                    "{} {}".format(runtime, arch),
                    frozenset(compatible_tags(runtime, arch)),
                    marker_environment(runtime, arch)["platform_machine"],
                ),
            )
        )
    for name, text in inputs.custom_platforms:
        try:
            data = json.loads(text)
            tags = frozenset(str(t) for t in data.get("compatible_tags", []))
            machine = str(data.get("marker_environment", {}).get("platform_machine", ""))
        except (ValueError, AttributeError):
            tags, machine = frozenset(), ""
        result.append((name, LockPlatform(name, tags, machine)))
    return result


def platforms_needed_by(needed_by: Iterable[Tuple[str, LockInputs]]) -> Dict[str, List[str]]:
    """{platform label: addresses of the targets that bring it into the resolve}.

    `needed_by` holds (address, that target's own needs); the labels are `LockPlatform.label`s.
    """
    result: Dict[str, List[str]] = {}
    for address, need in needed_by:
        labels = ["{} {}".format(runtime, arch) for runtime, arch in need.platforms]
        labels += [name for name, _ in need.custom_platforms]
        for label in labels:
            result.setdefault(label, []).append(address)
    return result


@dataclass(frozen=True)
class PipFailure:
    """What pip printed when it found nothing for a requirement on one platform."""

    requirement: str  # as pip names it: "tomli==2.0.99"
    versions: Optional[Tuple[str, ...]]  # "from versions: ..."; None when not printed
    # (version, Requires-Python) pip skipped for the interpreter version.
    ignored_for_python: Tuple[Tuple[str, str], ...] = ()
    platform_tag: Optional[str] = None  # from pip's `--dest .../<tag>`, when shown

    @property
    def project(self) -> str:
        return canonicalize_name(re.split(r"[<>=!~;\[ (@]", self.requirement, 1)[0])


@dataclass(frozen=True)
class IndexFiles:
    """What the index holds for a project: (filename, yank reason or None) per file."""

    found: Optional[bool]  # None: the index could not be asked
    files: Tuple[Tuple[str, Optional[str]], ...] = ()
    index: str = ""


_COULD_NOT_FIND = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?)"
    r"(?: \(from versions: (?P<versions>[^)]*)\))?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_NO_MATCHING = re.compile(r"No matching distribution found for (?P<req>\S+)", re.IGNORECASE)
_IGNORED_FOR_PYTHON = re.compile(
    r"Ignored the following versions that require a different python version: (?P<list>.*)"
)
_DEST_TAG = re.compile(r"--dest \S*?/(?P<tag>[a-z]+\d*-[a-z0-9_]+-[a-z0-9_]+)(?:\s|$)")


def parse_pip_failure(pex_output: str) -> Optional[PipFailure]:
    """The requirement pip could not satisfy, or None when the output is another failure."""
    match = _COULD_NOT_FIND.search(pex_output)
    versions: Optional[Tuple[str, ...]] = None
    if match:
        requirement = match.group("req").strip()
        listed = match.group("versions")
        if listed is not None:
            listed = listed.strip()
            versions = () if listed in ("", "none") else tuple(v.strip() for v in listed.split(","))
    else:
        no_match = _NO_MATCHING.search(pex_output)
        if not no_match:
            return None
        requirement = no_match.group("req")
    ignored = []
    python_match = _IGNORED_FOR_PYTHON.search(pex_output)
    if python_match:
        for entry in python_match.group("list").split(";"):
            version, _, spec = entry.strip().partition(" Requires-Python ")
            if version and spec:
                ignored.append((version.strip(), spec.strip()))
    tag = _DEST_TAG.search(pex_output)
    return PipFailure(requirement, versions, tuple(ignored), tag.group("tag") if tag else None)


def _parse_version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _file_version(filename: str, project: str) -> Optional[str]:
    """The version in a wheel or sdist file name of `project`."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return parts[1] if len(parts) >= 5 and canonicalize_name(parts[0]) == project else None
    for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
        if filename.endswith(ext):
            name, _, version = filename[: -len(ext)].rpartition("-")
            return version if name and canonicalize_name(name) == project else None
    return None


def _wheel_tags(filename: str) -> FrozenSet[str]:
    """Every `python-abi-platform` tag a wheel file name stands for (compressed sets expanded)."""
    parts = filename[: -len(".whl")].split("-")
    pythons, abis, platforms = parts[-3], parts[-2], parts[-1]
    return frozenset(
        "{}-{}-{}".format(p, a, pl)
        for p in pythons.split(".")
        for a in abis.split(".")
        for pl in platforms.split(".")
    )


def _wheels_by_version(project: str, index: IndexFiles) -> Dict[str, List[str]]:
    """{version: wheel file names} of every version on the index, yanked ones included."""
    result: Dict[str, List[str]] = {}
    for filename, _ in index.files:
        version = _file_version(filename, project)
        if version is None:
            continue
        wheels = result.setdefault(version, [])
        if filename.endswith(".whl"):
            wheels.append(filename)
    return result


def _specifier(requirement: str) -> Optional[SpecifierSet]:
    try:
        return Requirement(requirement).specifier
    except InvalidRequirement:
        return None


def _sorted_versions(versions: Iterable[str]) -> List[str]:
    parsed: List[Tuple[Version, str]] = []
    for text in versions:
        version = _parse_version(text)
        if version is not None:
            parsed.append((version, text))
    return [text for _, text in sorted(parsed, key=lambda pair: pair[0])]


def nearest_versions(wanted: str, existing: Iterable[str], around: int = 2) -> List[str]:
    """The existing versions on either side of a version that does not exist."""
    ordered = _sorted_versions(existing)
    target = _parse_version(wanted)
    if target is None:
        return ordered[-around:]
    below = [v for v in ordered if Version(v) < target]
    above = [v for v in ordered if Version(v) > target]
    return below[-around:] + above[:around]


def _pinned_version(requirement: str) -> Optional[str]:
    match = re.search(r"===?\s*([^\s,;]+)\s*$", requirement)
    return match.group(1) if match and "*" not in match.group(1) else None


def _compatible(wheels: Iterable[str], platform: LockPlatform) -> bool:
    return any(_wheel_tags(w) & platform.tags for w in wheels)


def _wheel_platforms(wheels: Iterable[str]) -> List[str]:
    return sorted({tag.split("-", 2)[2] for w in wheels for tag in _wheel_tags(w)})


def explain_platform_failure(
    failure: PipFailure,
    platform: LockPlatform,
    all_platforms: Sequence[LockPlatform],
    index: Optional[IndexFiles],
    top_level_requirements: Sequence[str] = (),
) -> str:
    """Why `failure` happened on `platform`, in Lambda's terms, with the fix."""
    req = failure.requirement
    project = failure.project
    pinned = _pinned_version(req)
    specifier = _specifier(req)
    index_name = (index.index if index and index.index else "the index").rstrip("/")

    if index is not None and index.found is False:
        return (
            "{req}: there is no project named `{project}` on {index}. Check the name in your "
            "requirements (or what pulls it in), or serve it from an index or find-links "
            "repository that has it ([python-repos].indexes / [python-repos].find_links).".format(
                req=req, project=project, index=index_name
            )
        )

    if pinned:
        for version, spec in failure.ignored_for_python:
            if version == pinned:
                return (
                    "{req} cannot run on {where}: it declares Requires-Python {spec}.\n"
                    "To fix it: choose a newer `runtime`, or pin a version of {project} that "
                    "supports this runtime's Python.".format(
                        req=req, where=platform.label, spec=spec, project=project
                    )
                )

    wheels = _wheels_by_version(project, index) if index is not None and index.found else None
    if wheels is not None and specifier is not None:
        matching = list(specifier.filter(list(wheels), prereleases=True if pinned else None))
        if not matching:
            near = nearest_versions(pinned, wheels) if pinned else _sorted_versions(wheels)[-4:]
            newest = _sorted_versions(wheels)[-1:] if wheels else []
            what = (
                "no version {}".format(pinned)
                if pinned
                else "no version matching `{}`".format(specifier)
            )
            return (
                "{req}: {project} has {what} on {index}. Nearest versions there: {near}{newest}. "
                "Fix the version in your requirements.".format(
                    req=req,
                    project=project,
                    what=what,
                    index=index_name,
                    near=", ".join(near) or "none",
                    newest=" (newest: {})".format(newest[0])
                    if newest and newest[0] not in near
                    else "",
                )
            )
        return _no_wheel_message(
            req,
            project,
            platform,
            all_platforms,
            {v: wheels[v] for v in matching},
            wheels,
            top_level_requirements,
        )

    # The index could not be asked: say what pip's text allows, without guessing the cause.
    if failure.versions:
        shown = (
            nearest_versions(pinned, failure.versions) if pinned else list(failure.versions)[-4:]
        )
        newest = _sorted_versions(failure.versions)[-1:]
        detail = (
            "pip found versions with a wheel for it ({}{}), but {} (it does not exist, or has no "
            "wheel for this platform)".format(
                ", ".join(shown),
                "; newest " + newest[0] if newest and newest[0] not in shown else "",
                "not {}".format(pinned) if pinned else "none that matches",
            )
        )
    else:
        detail = (
            "{} does not exist on the index, or none of its versions has a wheel for it".format(
                project
            )
        )
    return (
        "{req} cannot be locked for {where}: {detail}.\n"
        "To fix it: check the requirement's name and version; pin a version with a wheel for "
        "this runtime and architecture; or build the wheel yourself and serve it from a "
        "find-links repository ([python-repos].find_links).".format(
            req=req, where=platform.label, detail=detail
        )
    )


def _no_wheel_message(
    req: str,
    project: str,
    platform: LockPlatform,
    all_platforms: Sequence[LockPlatform],
    matching: Mapping[str, List[str]],
    all_wheels: Mapping[str, List[str]],
    top_level_requirements: Sequence[str],
) -> str:
    candidates = [w for ws in matching.values() for w in ws]
    if candidates:
        has = "its wheels are only for {}".format(", ".join(_wheel_platforms(candidates)))
    else:
        has = "it publishes only source distributions"
    fixes = []
    # Which of the resolve's platforms the same versions do serve: split by architecture?
    served = [p for p in all_platforms if _compatible(candidates, p)]
    unserved = [p for p in all_platforms if p not in served]
    served_machines = sorted({p.machine for p in served})
    if served and not ({p.machine for p in unserved} & set(served_machines)):
        marker = (
            'platform_machine == "{}"'.format(served_machines[0])
            if len(served_machines) == 1
            else 'platform_machine in "{}"'.format(" ".join(served_machines))
        )
        own = any(
            canonicalize_name(re.split(r"[<>=!~;\[ (@]", r, 1)[0]) == project
            for r in top_level_requirements
        )
        fixes.append(
            "it has wheels for {arch} only: limit the requirement to that architecture with an "
            "environment marker, `{base}; {marker}`{whose}, and keep code that imports it off "
            "the other architecture".format(
                arch=", ".join(served_machines),
                base=req.split(";")[0].strip(),
                marker=marker,
                whose="" if own else " (on the requirement that pulls it in)",
            )
        )
    newer_ok = [v for v in _sorted_versions(all_wheels) if _compatible(all_wheels[v], platform)]
    if newer_ok:
        fixes.append(
            "require a version with a wheel for {}: the newest is {}=={}".format(
                platform.label, project, newer_ok[-1]
            )
        )
    fixes.append("choose another `runtime` or `architecture`")
    fixes.append(
        "build the wheel yourself and serve it from a find-links repository "
        "([python-repos].find_links)"
    )
    return (
        "{req} has no wheel for {where}: {has} (Lambda needs wheels: there is no compiler "
        "there, and source distributions are not built for a foreign platform).\n"
        "To fix it: {fixes}.".format(
            req=req, where=platform.label, has=has, fixes="; or ".join(fixes)
        )
    )


def failing_platform(pex_output: str, platforms: Sequence[LockPlatform]) -> LockPlatform:
    """The platform a failed lock of all `platforms` together failed for, as far as pip says.

    pip names the platform only through the wheel tag of its `--dest` directory; when it does
    not, a lone platform is the one, and several are described as "all platforms".
    """
    failure = parse_pip_failure(pex_output)
    if failure is not None and failure.platform_tag:
        for platform in platforms:
            if failure.platform_tag in platform.tags:
                return platform
    if len(platforms) == 1:
        return platforms[0]
    return LockPlatform("all platforms", frozenset(), "")


@dataclass(frozen=True)
class PlatformFailure:
    """The outcome of locking a resolve for one platform alone that failed."""

    platform: LockPlatform
    output: str  # pex's stderr and stdout

    @property
    def pip_failure(self) -> Optional[PipFailure]:
        return parse_pip_failure(self.output)


def explain_lock_failures(
    python_resolve: str,
    failures: Sequence[PlatformFailure],
    all_platforms: Sequence[LockPlatform],
    index: Mapping[str, IndexFiles],
    needed_by: Mapping[str, Sequence[str]],
    top_level_requirements: Sequence[str] = (),
) -> str:
    """One message for every platform that failed, each with the targets that need it."""
    sections = []
    for failure in failures:
        pip_failure = failure.pip_failure
        if pip_failure is None:
            explanation = failure.output.strip() or "pex failed without a message."
        else:
            explanation = explain_platform_failure(
                pip_failure,
                failure.platform,
                all_platforms,
                index.get(pip_failure.project),
                top_level_requirements,
            )
        targets = sorted(needed_by.get(failure.platform.label, ()))
        sections.append(
            "{label}{by}:\n{body}".format(
                label=failure.platform.label,
                by=" (needed by {})".format(", ".join(targets)) if targets else "",
                body="\n".join("  " + line for line in explanation.splitlines()),
            )
        )
    return (
        "Could not lock the `{resolve}` resolve for Lambda: "
        "{n} of {total} platform(s) failed.\n\n{sections}"
    ).format(
        resolve=python_resolve,
        n=len(failures),
        total=len(all_platforms),
        sections="\n\n".join(sections),
    )


# ---------------------------------------------------------------------------------------------
# Yanked pins. pex's lock records no yank status and pex shows none of pip's warnings on
# success, so the plugin asks the index (`index_lookup.py`) which locked files are yanked.
# ---------------------------------------------------------------------------------------------


def locked_pins(lock_text: str) -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """{project: (version, artifact file names)} over every locked resolve of a pex lock."""
    data = json.loads(strip_header(lock_text))
    pins: Dict[str, Tuple[str, Tuple[str, ...]]] = {}
    for locked_resolve in data.get("locked_resolves", []):
        for req in locked_resolve.get("locked_requirements", []):
            project = canonicalize_name(req["project_name"])
            files = tuple(
                str(a.get("url", "")).rsplit("/", 1)[-1] for a in req.get("artifacts", [])
            )
            previous = pins.get(project, (req["version"], ()))[1]
            pins[project] = (req["version"], tuple(sorted(set(previous + files))))
    return pins


def yanked_pins(lock_text: str, index: Mapping[str, IndexFiles]) -> List[Tuple[str, str, str]]:
    """(project, version, reason) for each locked version whose files the index marks yanked."""
    result = []
    for project, (version, files) in sorted(locked_pins(lock_text).items()):
        info = index.get(project)
        if not info or not info.found:
            continue
        yanks = dict(info.files)
        reasons = [yanks[f] for f in files if f in yanks and yanks[f] is not None]
        if reasons:
            result.append((project, version, (reasons[0] or "").strip()))
    return result


def yanked_warning(lock_path: str, yanked: Sequence[Tuple[str, str, str]]) -> Optional[str]:
    if not yanked:
        return None
    lines = "\n".join(
        "  {}=={}: {}".format(p, v, "yanked: " + r if r else "yanked (no reason given)")
        for p, v, r in yanked
    )
    return (
        "The Lambda platform lockfile {path} pins versions that their index has yanked (withdrawn, "
        "usually for a bug or a security problem):\n{lines}\n"
        "Pin another version of each in your requirements (for example `!=` the yanked one) and "
        "regenerate the lock.".format(path=lock_path, lines=lines)
    )


def parse_index_lookup(json_text: str) -> Dict[str, IndexFiles]:
    """The output of `index_lookup.py`; {} when it is unreadable (then pip's text must do)."""
    try:
        data = json.loads(json_text)
        return {
            canonicalize_name(project): IndexFiles(
                found=info.get("found"),
                files=tuple((str(f["filename"]), f.get("yanked")) for f in info.get("files", [])),
                index=str(info.get("index", "")),
            )
            for project, info in data.get("projects", {}).items()
        }
    except (ValueError, AttributeError, KeyError, TypeError):
        return {}

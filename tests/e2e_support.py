"""Shared helpers for the end-to-end tests over the artifacts that `pants package` builds.

The `python_tests` targets in tests/BUILD list the layer and the example functions as
`runtime_package_dependencies`, so Pants builds them and puts them in the test sandbox at
their dist-relative paths (e.g. `src/powertools-x86_64.zip`), each with its manifest.
This module only reads them (stdlib only, CPython 3.9 syntax).
"""

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

# The test sandbox root: runtime packages and resources are laid out relative to it.
ROOT = Path(__file__).parent.parent

RUNTIME = "python3.12"
RUNTIME_VERSION = (3, 12)
LAYER_ADDRESS = "src:powertools"
LAYER_ZIPS = {
    "x86_64": "src/powertools-x86_64.zip",
    "arm64": "src/powertools-arm64.zip",
}


class Function(NamedTuple):
    name: str  # First-party package, also the folder of its sample events.
    artifact: str  # Dist-relative path of the ZIP.
    architecture: str
    source_handler: str  # Module path of the handler the user wrote.
    service: str  # POWERTOOLS_SERVICE_NAME used when running it.


FUNCTIONS = {
    "orders_api": Function(
        "orders_api",
        "src.orders_api/lambda.zip",
        "x86_64",
        "orders_api.app.lambda_handler",
        "orders-api",
    ),
    "sqs_batch": Function(
        "sqs_batch",
        "src.sqs_batch/lambda.zip",
        "arm64",
        "sqs_batch.app.lambda_handler",
        "order-fulfillment",
    ),
}

# A function for the python3.13 runtime without layers (src/greeter_py313:lambda): its ZIP
# bundles Powertools and its dependencies for cp313, with .pyc of CPython 3.13.
PY313_RUNTIME = "python3.13"
PY313_VERSION = (3, 13)
PY313_FUNCTION = Function(
    "greeter_py313",
    "src.greeter_py313/lambda.zip",
    "x86_64",
    "greeter_py313.app.lambda_handler",
    "greeter-py313",
)

# What the Lambda Python runtime already provides (and the official Powertools layer removes):
# PEP 503 distribution names, and the top-level import names they install.
RUNTIME_PROVIDED_DISTS = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
RUNTIME_PROVIDED_TOP_LEVEL = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"}
)

# ELF e_machine values (System V gABI): EM_X86_64 and EM_AARCH64.
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
ELF_MAGIC = b"\x7fELF"
ELF_CLASS_64 = 2
ELF_TYPE_SHARED = 3  # ET_DYN
# Bytecode magic numbers (importlib.util.MAGIC_NUMBER: the number little-endian + \r\n) and
# cache tags of the CPython versions of the runtimes the examples use.
PYC_MAGIC = {
    (3, 12): (3531).to_bytes(2, "little") + b"\r\n",
    (3, 13): (3571).to_bytes(2, "little") + b"\r\n",
}
PYC_MAGIC_312 = PYC_MAGIC[(3, 12)]
PYC_CACHE_TAG = "cpython-312"
# PEP 552 flags: bit 0 hash-based, bit 1 check_source. Lambda's runtimes leave
# --check-hash-based-pycs at "default", so an unchecked-hash .pyc is used without reading
# (or hashing) its source.
PYC_FLAGS_UNCHECKED_HASH = 0b01


def pyc_cache_tag(version: Tuple[int, int]) -> str:
    return "cpython-%d%d" % version


def artifact(rel: str) -> Path:
    path = ROOT / rel
    assert path.is_file(), (
        f"{rel} is missing from the test sandbox; is its target listed in "
        "runtime_package_dependencies in tests/BUILD?"
    )
    return path


def events_dir(function_name: str) -> Path:
    """Sample events of a function (`src/<name>:events`); Pants puts the `resources` under
    their source root in the pytest sandbox, with the source root on sys.path."""
    for candidate in (ROOT / "src" / function_name / "events", ROOT / function_name / "events"):
        if candidate.is_dir():
            return candidate
    raise AssertionError(
        f"no events for {function_name} in the sandbox; tests/BUILD must depend on "
        f"src/{function_name}:events"
    )


def manifest_path(zip_rel: str) -> str:
    """`X.zip` -> `X.lambda.json`, the manifest written next to every artifact."""
    assert zip_rel.endswith(".zip"), zip_rel
    return zip_rel[: -len(".zip")] + ".lambda.json"


def load_manifest(zip_rel: str) -> Dict[str, Any]:
    with open(artifact(manifest_path(zip_rel)), encoding="utf-8") as f:
        return json.load(f)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def code_sha256(data: bytes) -> str:
    """What AWS reports as CodeSha256: base64 of the raw sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def canonicalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unix_mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def dist_info_dirs(names: List[str], prefix: str = "") -> Dict[str, str]:
    """{canonical name: version} of every `<name>-<version>.dist-info/` under `prefix`."""
    found = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        top = name[len(prefix) :].split("/", 1)[0]
        if top.endswith(".dist-info"):
            dist, _, version = top[: -len(".dist-info")].partition("-")
            found[canonicalize(dist)] = version
    return found


def top_level_names(names: List[str], prefix: str = "") -> Dict[str, str]:
    """Top-level import name -> entry name, for packages/modules directly under `prefix`."""
    found: Dict[str, str] = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        if not rest:
            continue
        top = rest.split("/", 1)[0]
        if top.endswith(".dist-info") or top.endswith(".data") or top == "__pycache__":
            continue
        module = top.split(".", 1)[0] if "/" not in rest else top
        found.setdefault(module, name)
    return found


class ElfHeader(NamedTuple):
    elf_class: int
    elf_type: int
    machine: int


def parse_elf_header(data: bytes) -> Optional[ElfHeader]:
    """The fields of an ELF header we check, or None if `data` is not ELF."""
    if len(data) < 20 or data[:4] != ELF_MAGIC:
        return None
    endian = {1: "<", 2: ">"}.get(data[5])
    assert endian is not None, f"bad EI_DATA byte {data[5]}"
    elf_type, machine = struct.unpack_from(endian + "HH", data, 16)
    return ElfHeader(data[4], elf_type, machine)


class PycHeader(NamedTuple):
    magic: bytes
    flags: int
    rest: bytes  # source hash (hash-based) or mtime + size (timestamp-based)


def parse_pyc_header(data: bytes) -> PycHeader:
    assert len(data) >= 16, "truncated .pyc"
    (flags,) = struct.unpack_from("<I", data, 4)
    return PycHeader(data[:4], flags, data[8:16])


# ---------------------------------------------------------------------------------------------
# A CPython of the runtime's version, found by search (never a hard-coded path).
# ---------------------------------------------------------------------------------------------

_PROBE = (
    "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2]); "
    "print(sys.implementation.name)"
)


def _version_key(path: str) -> Tuple[int, ...]:
    match = re.search(r"versions/(\d+(?:\.\d+)*)", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def _pyenv_root() -> Optional[str]:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return None
    try:
        out = subprocess.run(
            [pyenv, "root"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode().strip() or None


def find_runtime_python(
    version: Tuple[int, int] = RUNTIME_VERSION,
) -> Tuple[Optional[str], List[str]]:
    """(interpreter, what was tried): `python3.X` on PATH, then pyenv's 3.X.y, newest first
    (3.X is `version`, by default the python3.12 runtime's).

    Each candidate is run to check it is CPython 3.X (a pyenv shim on PATH may refuse to
    run when 3.X is not the selected version); the interpreter's own sys.executable is
    returned so later runs skip any shim.
    """
    want = "%d.%d" % version
    candidates = []
    on_path = shutil.which("python" + want)
    if on_path:
        candidates.append(on_path)
    root = _pyenv_root()
    if root:
        found = glob.glob(os.path.join(root, "versions", want + "*", "bin", "python"))
        candidates.extend(sorted(found, key=_version_key, reverse=True))
    tried = []
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-S", "-s", "-E", "-c", _PROBE],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as e:
            tried.append(f"{candidate}: {e}")
            continue
        lines = out.stdout.decode().split()
        if out.returncode == 0 and len(lines) == 3 and lines[1] == want and lines[2] == "cpython":
            return lines[0], tried
        tried.append(f"{candidate}: exit {out.returncode}, {out.stdout.decode().strip()!r}")
    return None, tried or ["no python%s on PATH and no pyenv versions/%s*" % (want, want)]


# ---------------------------------------------------------------------------------------------
# Unzipping like Lambda does (keeping the modes, which zipfile.extractall drops).
# ---------------------------------------------------------------------------------------------


def extract(zip_path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(str(zip_path)) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, str(dest)))
            mode = stat.S_IMODE(unix_mode(info))
            if mode:
                os.chmod(str(target), mode)


def bytecode_problems(
    zf: zipfile.ZipFile, version: Tuple[int, int] = RUNTIME_VERSION
) -> List[Tuple[str, str]]:
    """Bytecode that Lambda's CPython 3.X (`version`, by default 3.12) would not use as is: not
    in `__pycache__`, another cache tag or magic, timestamp-based (PEP 552 flags bit 0 unset),
    or without its source."""
    cache_tag, magic = pyc_cache_tag(version), PYC_MAGIC[version]
    names = set(zf.namelist())
    problems = []
    for name in sorted(names):
        parts = name.split("/")
        if name.endswith((".pyc", ".pyo")) and "__pycache__" not in parts:
            problems.append((name, "bytecode outside __pycache__"))
            continue
        if "__pycache__" not in parts or name.endswith("/"):
            continue
        if not name.endswith(".pyc"):
            problems.append((name, "not a .pyc"))
            continue
        module, _, tag = parts[-1][: -len(".pyc")].rpartition(".")
        if tag != cache_tag:
            problems.append((name, "cache tag %s" % tag))
        source = "/".join(parts[:-2] + [module + ".py"])
        if source not in names:
            problems.append((name, "no source %s" % source))
        header = parse_pyc_header(zf.read(name))
        if header.magic != magic:
            problems.append((name, "magic %r" % header.magic))
        if not header.flags & 0b01:
            problems.append((name, "timestamp-based (flags %d)" % header.flags))
    return problems


def hash_based_pycs(zf: zipfile.ZipFile) -> Dict[str, str]:
    """{.pyc entry: its source entry} for every hash-based .pyc (to check the hashes)."""
    pairs = {}
    for name in zf.namelist():
        parts = name.split("/")
        if name.endswith(".pyc") and len(parts) >= 2 and parts[-2] == "__pycache__":
            module = parts[-1][: -len(".pyc")].rpartition(".")[0]
            source = "/".join(parts[:-2] + [module + ".py"])
            if parse_pyc_header(zf.read(name)).flags & 0b01:
                pairs[name] = source
    return pairs


def elf_entries(zf: zipfile.ZipFile) -> Dict[str, ElfHeader]:
    """{entry: ELF header} of every ELF file in the ZIP, whatever its name."""
    found = {}
    for info in zf.infolist():
        if info.filename.endswith("/"):
            continue
        header = parse_elf_header(zf.read(info.filename))
        if header is not None:
            found[info.filename] = header
    return found


def native_code_problems(zf: zipfile.ZipFile, arch: str) -> Dict[str, str]:
    """ELF files that Lambda's `arch` could not load as extension modules: not named `.so`, not
    a 64-bit shared object, or built for another machine."""
    problems = {}
    for name, header in elf_entries(zf).items():
        if not name.endswith(".so"):
            problems[name] = "ELF file not named .so"
        elif header.machine != ELF_MACHINE[arch]:
            problems[name] = "e_machine %d, %s needs %d" % (header.machine, arch, ELF_MACHINE[arch])
        elif header.elf_class != ELF_CLASS_64 or header.elf_type != ELF_TYPE_SHARED:
            problems[name] = "ELF class %d type %d" % (header.elf_class, header.elf_type)
    return problems


def zip_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(str(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_cached(zip_path: Path, cache_root: Path) -> Path:
    """Extracts a ZIP (with `extract`) into `cache_root/<sha256 prefix>` unless that tree
    already exists; a tree is only published (renamed into place) once complete."""
    dest = cache_root / zip_sha256(zip_path)[:16]
    if not dest.is_dir():
        partial = cache_root / (dest.name + ".partial-%d" % os.getpid())
        shutil.rmtree(str(partial), ignore_errors=True)
        extract(zip_path, partial)
        os.replace(str(partial), str(dest))
    return dest


# ---------------------------------------------------------------------------------------------
# The interpreter and what the python3.12 runtime provides besides the layers.
# ---------------------------------------------------------------------------------------------

PIP_TIMEOUT = 600


def require_runtime_python() -> str:
    """`find_runtime_python()`, or an AssertionError that says what was tried and the fix."""
    python, tried = find_runtime_python(RUNTIME_VERSION)
    assert python is not None, (
        "No CPython %d.%d (the %s runtime's version) found; tried: %s. Install one, e.g. "
        "`pyenv install %d.%d`." % (RUNTIME_VERSION + (RUNTIME, "; ".join(tried)) + RUNTIME_VERSION)
    )
    return python


def pip_install(python: str, args: List[str], timeout: int = PIP_TIMEOUT) -> None:
    """`python -m pip install` from PyPI, wheels only, ignoring the user's pip configuration."""
    proc = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--only-binary=:all:",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        env={"PATH": os.environ.get("PATH", os.defpath), "HOME": os.environ.get("HOME", "/")},
    )
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")


def runtime_provided_requirements(artifact_zip: Path, prefix: str = "python/") -> List[str]:
    """The unconditional requirements of the distributions installed under `prefix` of a ZIP
    (a layer's `python/`, or "" for a function ZIP) that the runtime provides."""
    requirements = []
    with zipfile.ZipFile(str(artifact_zip)) as zf:
        for name in zf.namelist():
            if not name.startswith(prefix) or not name.endswith(".dist-info/METADATA"):
                continue
            if name[len(prefix) :].count("/") != 1:
                continue
            for line in zf.read(name).decode("utf-8").splitlines():
                if not line.startswith("Requires-Dist:"):
                    continue
                requirement = line[len("Requires-Dist:") :].strip()
                if "extra ==" in requirement.replace("extra==", "extra =="):
                    continue
                name_match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
                assert name_match is not None, f"{name}: Requires-Dist: {requirement}"
                dist = name_match.group(0)
                if canonicalize(dist) in RUNTIME_PROVIDED_DISTS:
                    requirements.append(requirement)
    return sorted(set(requirements))


def install_runtime_provided(
    python: str, layer_zip: Path, dest: Path, prefix: str = "python/"
) -> Path:
    """What Lambda's runtime provides after the layers (its boto3, botocore, jmespath, ...) and
    the layer (or, with `prefix=""`, a function ZIP without layers) therefore leaves out,
    installed with pip from PyPI into `dest` for `python`. Only runtime-provided distributions
    may come in: nothing here may stand in for something the ZIP should have carried."""
    requirements = runtime_provided_requirements(layer_zip, prefix)
    assert any(r.startswith("jmespath") for r in requirements), requirements
    pip_install(python, ["--target", str(dest), *requirements])
    installed = set(dist_info_dirs([p.name + "/" for p in dest.iterdir()]))
    assert installed and installed <= RUNTIME_PROVIDED_DISTS, sorted(installed)
    return dest


def sqs_message_ids(event_name: str) -> List[str]:
    """The messageId of each record of a sample SQS event of sqs_batch, in order."""
    with open(str(events_dir("sqs_batch") / (event_name + ".json"))) as f:
        return [record["messageId"] for record in json.load(f)["Records"]]

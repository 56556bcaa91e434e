"""What `slim` saves on a real layer: the same requirements packaged with and without it.

Copies the tracked files of this repository (working-tree contents) into a scratch folder, adds a
resolve for the requirement and two `powertools_layer` targets that differ only in `slim`, locks
the resolve for Lambda (`generate-lockfiles --resolve=<resolve>-lambda-platforms`), packages both
and prints their sizes from the manifests, with the manifest's `slimmed` breakdown. Only the
scratch folder is written; Pants runs there without pantsd, so nothing is left running.

    python3 bench/slim.py                                   # numpy>=1.26,<2 for python3.11
    python3 bench/slim.py --requirement 'pandas>=2.2' --runtime python3.12 --no-bytecode
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
RESOLVE = "slimbench"
_PANTS = ["./pants", "--no-pantsd", "--no-python-enable-lockfile-targets"]


def _copy_repo(scratch: Path) -> None:
    """The tracked files as they are now, so uncommitted plugin edits are measured too."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True)
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, tracked):
        src = REPO / rel
        if src.is_file():
            dst = scratch / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def _add_workload(scratch: Path, requirement: str, runtime: str, bytecode: bool) -> None:
    minor = runtime[len("python") :]
    (scratch / "3rdparty/python/slimbench-requirements.txt").write_text(requirement + "\n")
    with open(scratch / "3rdparty/python/BUILD", "a") as f:
        f.write(
            f'\npython_requirements(name="slimbench", source="slimbench-requirements.txt", '
            f'resolve="{RESOLVE}")\n'
        )
    toml = (scratch / "pants.toml").read_text()
    toml = re.sub(
        r"(\[python\.resolves\]\n)", rf'\1{RESOLVE} = "3rdparty/python/{RESOLVE}.lock"\n', toml
    )
    toml = re.sub(
        r"(\[python\.resolves_to_interpreter_constraints\]\n)",
        rf'\1{RESOLVE} = ["CPython=={minor}.*"]\n',
        toml,
    )
    (scratch / "pants.toml").write_text(toml)
    layers = "".join(
        f"""
powertools_layer(
    name="{name}",
    runtime="{runtime}",
    architectures=["x86_64"],
    resolve="{RESOLVE}",
    dependencies=["3rdparty/python:slimbench"],
    compile_bytecode={bytecode},
    slim={slim},
)
"""
        for name, slim in (("full", False), ("slim", True))
    )
    (scratch / "slimbench").mkdir()
    (scratch / "slimbench/BUILD").write_text(layers)


def _run(scratch: Path, args: List[str]) -> float:
    start = time.monotonic()
    proc = subprocess.run([*_PANTS, *args], cwd=scratch, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirement", default="numpy>=1.26,<2")
    parser.add_argument("--runtime", default="python3.11")
    parser.add_argument("--no-bytecode", action="store_true", help="Ship no .pyc in either layer.")
    parser.add_argument("--scratch", default="/tmp/slimbench", help="Scratch copy (replaced).")
    parser.add_argument(
        "--json", help="Also write the figures to this file (bench/run.py reads it)."
    )
    args = parser.parse_args()

    scratch = Path(args.scratch)
    _copy_repo(scratch)
    _add_workload(scratch, args.requirement, args.runtime, not args.no_bytecode)
    print(f"Locking {args.requirement} for Lambda {args.runtime} in {scratch} ...", flush=True)
    _run(scratch, ["generate-lockfiles", f"--resolve={RESOLVE}-lambda-platforms"])
    print("Packaging both layers ...", flush=True)
    _run(scratch, ["package", "slimbench:full", "slimbench:slim"])

    manifests: Dict[str, dict] = {
        name: json.loads((scratch / f"dist/slimbench/{name}-x86_64.lambda.json").read_text())
        for name in ("full", "slim")
    }
    full, slim = manifests["full"], manifests["slim"]
    print(f"\n{args.requirement}, {args.runtime} x86_64, bytecode {not args.no_bytecode}")
    print(f"distributions: {slim['distributions']}\n")
    print("| layer | zipped bytes | unzipped bytes |")
    print("|---|---|---|")
    for name, m in manifests.items():
        print(f"| {name} | {m['size']:,} | {m['unzipped_size']:,} |")
    print(
        f"| slim / full | {slim['size'] / full['size']:.3f} "
        f"({1 - slim['size'] / full['size']:.1%} smaller) | "
        f"{slim['unzipped_size'] / full['unzipped_size']:.3f} "
        f"({1 - slim['unzipped_size'] / full['unzipped_size']:.1%} smaller) |"
    )
    print("\nLeft out (their .pyc are not compiled either; `symbols`: native files stripped):")
    for category, counts in sorted(slim["slimmed"].items()):
        print(f"  {category:8} {counts['files']:6} files {counts['bytes']:12,} bytes")
    if args.json:
        figures = {
            "requirement": args.requirement,
            "runtime": args.runtime,
            "bytecode": not args.no_bytecode,
            "distributions": slim["distributions"],
            "full": {"size": full["size"], "unzipped_size": full["unzipped_size"]},
            "slim": {"size": slim["size"], "unzipped_size": slim["unzipped_size"]},
            "slimmed": slim["slimmed"],
        }
        Path(args.json).write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

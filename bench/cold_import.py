"""Cold import time of a packaged handler, the way Lambda starts it.

Unzips a layer ZIP into <tmp>/opt and a function ZIP into <tmp>/task, then times
`import lambda_function` in fresh interpreter processes that cannot write bytecode (`-B`), with
the task folder, the layer's `python/` and (optionally) a folder standing in for the runtime's
own boto3/jmespath on the path, in Lambda's order. Prints the median of N runs in ms.

    python3.12 bench/cold_import.py --layer dist/src/powertools-x86_64.zip \
        --function dist/src.orders_api/lambda.zip --runtime-dir /tmp/lambda-runtime
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

_PROBE = """
import sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
import lambda_function
print((time.perf_counter() - t0) * 1000)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", action="append", default=[])
    parser.add_argument("--function", required=True)
    parser.add_argument("--runtime-dir", help="Folder with the runtime-provided distributions.")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp, "task")
        zipfile.ZipFile(args.function).extractall(task)
        paths = [str(task)]
        for index, layer in enumerate(args.layer):
            opt = Path(tmp, f"opt{index}")
            zipfile.ZipFile(layer).extractall(opt)
            paths.append(str(opt / "python"))
        if args.runtime_dir:
            paths.append(args.runtime_dir)
        env = {"POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "bench"}
        times = []
        for _ in range(args.runs):
            out = subprocess.run(
                [args.python, "-B", "-s", "-c", _PROBE.format(paths=paths)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            times.append(float(out.strip().splitlines()[-1]))
    print(
        json.dumps(
            {
                "median_ms": round(statistics.median(times), 1),
                "runs_ms": [round(t, 1) for t in times],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

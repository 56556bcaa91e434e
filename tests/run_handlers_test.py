"""Run the packaged handlers the way Lambda's Python runtime does, on a CPython 3.12.

Layout, as in a Lambda execution environment: the x86_64 layer ZIP is extracted into
`<tmp>/opt` (so its `python/` folder is `/opt/python`) and a function ZIP into `<tmp>/task`
(`/var/task`). A fresh `python -S -s -E -B` process (no site-packages of that interpreter,
no PYTHON* variables, nothing written next to the code) runs a small driver that builds
`sys.path` like AWS's bootstrap does: the task folder, the layer's
`python/lib/python3.12/site-packages` and `python/` (with `site.addsitedir`, so `.pth` files
load), the interpreter's stdlib, and last the distributions the runtime itself provides
(boto3, botocore, jmespath, ...), which this test installs with pip into a separate folder.
The driver imports `lambda_function`, calls `handler(event, context)` with each sample event
and a fake context, and writes the responses and where every imported module came from to
a JSON file; the Powertools Logger writes its JSON lines to stdout.
"""

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

from tests.e2e_support import (
    FUNCTIONS,
    LAYER_ZIPS,
    artifact,
    events_dir,
    extract,
    hash_based_pycs,
    install_runtime_provided,
    parse_elf_header,
    require_runtime_python,
    sqs_message_ids,
)

RUN_TIMEOUT = 180

DRIVER = r"""
import importlib
import json
import os
import site
import sys
import traceback

spec = json.load(open(sys.argv[1]))
# With -S, sys.path is [this script's folder, the stdlib zip, the stdlib, lib-dynload].
stdlib = sys.path[1:]
sys.path[:] = [spec["task"]]
for layer_dir in spec["layer_dirs"]:
    if os.path.isdir(layer_dir):
        site.addsitedir(layer_dir)
sys.path.extend(stdlib)
for runtime_dir in spec["runtime_dirs"]:
    site.addsitedir(runtime_dir)


class FakeContext:
    function_version = "$LATEST"
    memory_limit_in_mb = 128

    def __init__(self, function_name, request_id):
        self.function_name = function_name
        self.aws_request_id = request_id
        self.invoked_function_arn = (
            "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
        )
        self.log_group_name = "/aws/lambda/" + function_name
        self.log_stream_name = "2024/01/15/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self):
        return 30000


def error(e):
    return {
        "type": type(e).__name__,
        "name": getattr(e, "name", None),
        "message": str(e),
        "traceback": traceback.format_exc(),
    }


result = {"sys_path": list(sys.path), "invocations": []}
try:
    lambda_function = importlib.import_module("lambda_function")
except Exception as e:
    result["import_error"] = error(e)
else:
    module, _, attr = spec["source_handler"].rpartition(".")
    result["handler_is_source_handler"] = (
        lambda_function.handler is getattr(importlib.import_module(module), attr)
    )
    for invocation in spec["invocations"]:
        with open(invocation["event"]) as f:
            event = json.load(f)
        context = FakeContext(spec["function_name"], invocation["request_id"])
        entry = {"name": invocation["name"]}
        try:
            entry["response"] = lambda_function.handler(event, context)
        except Exception as e:
            entry["error"] = error(e)
        result["invocations"].append(entry)
sys.stdout.flush()
result["modules"] = {
    name: getattr(mod, "__file__", None)
    for name, mod in sorted(sys.modules.items())
    if getattr(mod, "__file__", None)
}
result["stdlib"] = stdlib
with open(spec["out"], "w") as f:
    json.dump(result, f, default=repr)
"""

PYC_CHECK = r"""
import importlib.util, json, marshal, sys, zipfile
bad = []
for path, pairs in json.load(open(sys.argv[1])).items():
    with zipfile.ZipFile(path) as zf:
        for pyc, source in pairs.items():
            data = zf.read(pyc)
            if data[8:16] != importlib.util.source_hash(zf.read(source)):
                bad.append([path, pyc, "source hash differs from " + source])
            try:
                marshal.loads(data[16:])
            except Exception as e:
                bad.append([path, pyc, repr(e)])
print(json.dumps(bad))
"""


class Run(NamedTuple):
    result: Dict
    logs: List[Dict]  # Powertools JSON log lines (with "level" and "service").
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def python312():
    return require_runtime_python()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("lambda")


@pytest.fixture(scope="module")
def opt(workdir):
    """The x86_64 layer, extracted as Lambda does into /opt."""
    dest = workdir / "opt"
    extract(artifact(LAYER_ZIPS["x86_64"]), dest)
    return dest


@pytest.fixture(scope="module")
def tasks(workdir):
    """Each function ZIP, extracted as Lambda does into /var/task."""
    dirs = {}
    for name, function in FUNCTIONS.items():
        dirs[name] = workdir / ("task-" + name)
        extract(artifact(function.artifact), dirs[name])
    return dirs


@pytest.fixture(scope="module")
def runtime_dir(python312, workdir):
    """What Lambda's python3.12 runtime provides after the layers (its boto3, botocore,
    jmespath, ...): the layer leaves them out, so they must come from somewhere here too.
    Installed with pip from PyPI, once per test module."""
    return install_runtime_provided(python312, artifact(LAYER_ZIPS["x86_64"]), workdir / "runtime")


def _run(python312, workdir, function, task, opt, runtime, invocations) -> Run:
    layer_dirs = []
    if opt is not None:
        layer_dirs = [
            str(opt / "python" / "lib" / "python3.12" / "site-packages"),
            str(opt / "python"),
        ]
    run_id = "%s-%s" % (function.name, "layer" if opt else "nolayer")
    out = workdir / (run_id + ".result.json")
    spec_path = workdir / (run_id + ".spec.json")
    driver = workdir / "driver.py"
    driver.write_text(DRIVER)
    spec = {
        "task": str(task),
        "layer_dirs": layer_dirs,
        "runtime_dirs": [str(runtime)],
        "source_handler": function.source_handler,
        "function_name": function.service,
        "invocations": [
            {
                "name": name,
                "event": str(events_dir(function.name) / (name + ".json")),
                "request_id": "req-%02d-%s" % (i, name),
            }
            for i, name in enumerate(invocations)
        ],
        "out": str(out),
    }
    spec_path.write_text(json.dumps(spec))
    env = {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(workdir),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function.service,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "LAMBDA_TASK_ROOT": str(task),
        "_HANDLER": "lambda_function.handler",
        "POWERTOOLS_SERVICE_NAME": function.service,
        "POWERTOOLS_METRICS_NAMESPACE": "PantsPowertoolsE2E",
        # No X-Ray daemon here; the tracer would only try to send UDP segments.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    proc = subprocess.run(
        [python312, "-S", "-s", "-E", "-B", str(driver), str(spec_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(task),
        env=env,
        timeout=RUN_TIMEOUT,
    )
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode == 0, "driver failed:\n%s\n%s" % (stdout, stderr)
    result = json.loads(out.read_text())
    logs = []
    for line in stdout.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "level" in parsed and "service" in parsed:
            logs.append(parsed)
    return Run(result, logs, stdout, stderr)


def _responses(run: Run) -> Dict[str, Dict]:
    responses = {}
    for invocation in run.result["invocations"]:
        assert "error" not in invocation, invocation["error"]["traceback"]
        responses[invocation["name"]] = invocation["response"]
    return responses


def _assert_isolated(run: Run, task: Path, opt: Optional[Path], runtime: Path) -> None:
    """Every imported module came from the task, the layer, the stdlib or the runtime folder;
    none from the interpreter's site-packages."""
    allowed = (
        [str(task), str(runtime)]
        + ([str(opt)] if opt else [])
        + [p for p in run.result["stdlib"] if "site-packages" not in p]
    )
    in_site_packages = os.sep + "site-packages" + os.sep
    stray = {
        name: path
        for name, path in run.result["modules"].items()
        if name != "__main__"
        and (
            not any(path.startswith(a + os.sep) for a in allowed)
            # The stdlib folder holds the interpreter's site-packages: only the layer's count.
            or (in_site_packages in path and not (opt and path.startswith(str(opt) + os.sep)))
        )
    }
    assert stray == {}
    assert not [
        p
        for p in run.result["sys_path"]
        if "site-packages" in p and not (opt and p.startswith(str(opt)))
    ], run.result["sys_path"]


def _origin(run: Run, module: str) -> str:
    return run.result["modules"][module]


ORDERS_EVENTS = [
    "get_order",
    "get_order_not_found",
    "create_order",
    "create_order_invalid",
    "list_orders",
]


@pytest.fixture(scope="module")
def orders_run(python312, workdir, tasks, opt, runtime_dir):
    return _run(
        python312,
        workdir,
        FUNCTIONS["orders_api"],
        tasks["orders_api"],
        opt,
        runtime_dir,
        ORDERS_EVENTS,
    )


def test_orders_api_answers_like_api_gateway_expects(orders_run):
    assert "import_error" not in orders_run.result, orders_run.result["import_error"]
    assert orders_run.result["handler_is_source_handler"] is True
    r = _responses(orders_run)

    assert r["get_order"]["statusCode"] == 200
    order = json.loads(r["get_order"]["body"])
    assert order["order_id"] == "ord-1001"
    assert order["customer_id"] == "cust-42"
    assert order["total_cents"] == 2 * 1599 + 250

    assert r["get_order_not_found"]["statusCode"] == 404

    assert r["create_order"]["statusCode"] == 201
    created = json.loads(r["create_order"]["body"])
    assert created["customer_id"] == "cust-77"
    assert created["total_cents"] == 2 * 1250 + 3 * 499
    assert r["create_order"]["multiValueHeaders"]["Location"] == [
        "/orders/%s" % created["order_id"]
    ]

    assert r["create_order_invalid"]["statusCode"] == 422

    assert r["list_orders"]["statusCode"] == 200
    listed = json.loads(r["list_orders"]["body"])
    assert [o["order_id"] for o in listed] == ["ord-1001"]


def test_orders_api_logs_structured_json(orders_run):
    created = json.loads(_responses(orders_run)["create_order"]["body"])
    [line] = [log for log in orders_run.logs if log.get("message") == "Order created"]
    assert line["level"] == "INFO"
    assert line["service"] == "orders-api"
    assert line["order_id"] == created["order_id"]
    assert line["function_name"] == "orders-api"
    assert line["function_request_id"] == "req-02-create_order"
    # The first invocation of the process is the cold start.
    [not_found] = [log for log in orders_run.logs if log.get("message") == "Order not found"]
    assert not_found["cold_start"] is False
    assert not_found["order_id"] == "ord-missing"


def test_orders_api_imports_come_from_task_layer_and_runtime(orders_run, tasks, opt, runtime_dir):
    _assert_isolated(orders_run, tasks["orders_api"], opt, runtime_dir)
    assert _origin(orders_run, "lambda_function").startswith(str(tasks["orders_api"]))
    assert _origin(orders_run, "orders_api.app").startswith(str(tasks["orders_api"]))
    for module in ("aws_lambda_powertools", "pydantic", "pydantic_core._pydantic_core"):
        assert _origin(orders_run, module).startswith(str(opt / "python")), module
    # Powertools needs jmespath, which only the runtime provides (the layer leaves it out).
    assert _origin(orders_run, "jmespath").startswith(str(runtime_dir))


SQS_BATCH_EVENTS = ["order_placed", "order_placed_batch"]


@pytest.fixture(scope="module")
def sqs_run(python312, workdir, tasks, opt, runtime_dir):
    # src/sqs_batch:lambda is packaged for arm64 and this machine runs x86_64. Running its ZIP
    # with the *x86_64* layer is still a faithful test of that ZIP: it holds only first-party
    # pure Python (function_artifacts_test.py checks it has no ELF file, and it is checked
    # again below), and bytecode is architecture-independent; only the layer differs by
    # architecture (its native pydantic-core/wrapt), and both layers carry the same
    # distributions at the same versions (layer_artifacts_test.py).
    function = FUNCTIONS["sqs_batch"]
    assert function.architecture == "arm64"
    with zipfile.ZipFile(str(artifact(function.artifact))) as zf:
        assert not [n for n in zf.namelist() if parse_elf_header(zf.read(n))]
    return _run(
        python312, workdir, function, tasks["sqs_batch"], opt, runtime_dir, SQS_BATCH_EVENTS
    )


def test_sqs_batch_reports_only_the_bad_records(sqs_run):
    assert "import_error" not in sqs_run.result, sqs_run.result["import_error"]
    assert sqs_run.result["handler_is_source_handler"] is True
    r = _responses(sqs_run)
    assert r["order_placed"] == {"batchItemFailures": []}

    ids = sqs_message_ids("order_placed_batch")
    assert len(ids) == 5
    # Records 3-5 are bad: malformed JSON, schema-invalid, unknown SKU (see the event file).
    assert r["order_placed_batch"] == {
        "batchItemFailures": [{"itemIdentifier": i} for i in ids[2:]]
    }


def test_sqs_batch_logs_structured_json(sqs_run, tasks, opt, runtime_dir):
    ids = sqs_message_ids("order_placed_batch")
    reserved = [log for log in sqs_run.logs if log.get("message") == "Stock reserved"]
    assert [(log["message_id"], log["order_id"]) for log in reserved] == [
        (ids[0], "ord-2001"),  # from order_placed.json (same record)
        (ids[0], "ord-2001"),
        (ids[1], "ord-2002"),
    ]
    assert {log["service"] for log in reserved} == {"order-fulfillment"}
    [rejected] = [log for log in sqs_run.logs if log.get("message") == "Rejecting order event"]
    assert rejected["level"] == "ERROR"
    assert rejected["message_id"] == ids[4]
    assert rejected["exception_name"] == "UnknownSkuError"
    summaries = [log for log in sqs_run.logs if log.get("message") == "Batch processed"]
    assert [(s["record_count"], s["failure_count"]) for s in summaries] == [(1, 0), (5, 3)]
    _assert_isolated(sqs_run, tasks["sqs_batch"], opt, runtime_dir)


def test_function_without_its_layer_fails_to_import(python312, workdir, tasks, runtime_dir):
    """Proves the function ZIP really relies on the layer (it does not bundle Powertools),
    even with everything the runtime provides on the path."""
    run = _run(
        python312,
        workdir,
        FUNCTIONS["orders_api"],
        tasks["orders_api"],
        None,
        runtime_dir,
        ORDERS_EVENTS[:1],
    )
    error = run.result.get("import_error")
    assert error is not None, "imported without the layer"
    assert error["type"] == "ModuleNotFoundError"
    assert error["name"] == "aws_lambda_powertools"
    assert run.result["invocations"] == []


def test_bytecode_matches_the_shipped_sources(python312, workdir):
    """Hash-based .pyc are never checked against their source by Lambda (`unchecked-hash`),
    so a stale one would silently run other code: check each hash with CPython 3.12's own
    `importlib.util.source_hash`, and that the code object loads."""
    zips = [LAYER_ZIPS["x86_64"], LAYER_ZIPS["arm64"]] + [f.artifact for f in FUNCTIONS.values()]
    pairs = {}
    for rel in zips:
        with zipfile.ZipFile(str(artifact(rel))) as zf:
            pairs[str(artifact(rel))] = hash_based_pycs(zf)
    if not any(pairs.values()):
        pytest.skip("no hash-based .pyc in the artifacts ([powertools].compile_bytecode off)")
    spec = workdir / "pycs.json"
    spec.write_text(json.dumps(pairs))
    script = workdir / "pyc_check.py"
    script.write_text(PYC_CHECK)
    proc = subprocess.run(
        [python312, "-S", "-s", "-E", "-B", str(script), str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=RUN_TIMEOUT,
        env={"PATH": os.defpath},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert json.loads(proc.stdout.decode()) == []

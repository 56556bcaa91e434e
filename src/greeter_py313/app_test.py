import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from greeter_py313 import app

EVENTS_DIR = Path(__file__).parent / "events"


@dataclass
class FakeLambdaContext:
    function_name: str = "greeter-py313"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:greeter-py313"
    aws_request_id: str = "0f3c2a9e-5d1b-4c7a-9e8f-1a2b3c4d5e6f"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


class _CurrentStdout:
    """The Logger's handler keeps the sys.stdout of import time; capsys swaps it per test."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def logs(capsys, monkeypatch):
    monkeypatch.setattr(app.logger.registered_handler, "stream", _CurrentStdout())

    def read() -> list:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    return read


def test_greets_by_path_parameter(logs, lambda_context):
    response = app.lambda_handler(load_event("hello.json"), lambda_context)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["message"] == "Hello, Ada!"
    # The unit test runs on the resolve's CPython; the packaged function on Lambda's 3.13.
    assert body["runtime"] == "python%d.%d" % sys.version_info[:2]
    assert body["cache_tag"] == sys.implementation.cache_tag
    [line] = [log for log in logs() if log["message"] == "Greeting"]
    assert line["service"] == "greeter-py313"
    assert line["greeted"] == "Ada"
    assert line["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert line["function_request_id"] == FakeLambdaContext.aws_request_id


def test_query_string_overrides_the_greeting(lambda_context):
    response = app.lambda_handler(load_event("hello_greeting.json"), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["message"] == "Bonjour, Grace!"


def test_too_long_a_name_is_a_bad_request(lambda_context):
    event = load_event("hello.json")
    name = "x" * (app.MAX_NAME_LENGTH + 1)
    event["path"] = "/hello/" + name
    event["pathParameters"] = {"name": name}
    response = app.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 400
    assert "1 to 64 characters" in json.loads(response["body"])["message"]

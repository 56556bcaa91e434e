import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orders_api import app

# GET requests publish no application metrics; Powertools warns about that on every flush.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@dataclass
class FakeLambdaContext:
    function_name: str = "orders-api"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# Sample events live next to this file (a `resources` target in Pants, which strips the
# source root just like it does for the code, so the relative layout is the same).
EVENTS_DIR = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


class _CurrentStdout:
    """File-like object that always writes to whatever ``sys.stdout`` currently is."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def stdout_lines(capsys, monkeypatch):
    """Returns a callable giving the JSON lines (logs + EMF metrics) written to stdout.

    The Powertools Logger binds its StreamHandler to the ``sys.stdout`` object of the
    moment ``orders_api.app`` was imported, which is not the stream capsys swaps in for
    each test, so route the handler through the current ``sys.stdout`` instead.
    """
    monkeypatch.setattr(app.logger.registered_handler, "stream", _CurrentStdout())

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    return read


def header(response: dict[str, Any], name: str) -> str:
    values = response["multiValueHeaders"][name]
    assert len(values) == 1
    return values[0]


def test_get_order_returns_existing_order(lambda_context):
    response = app.lambda_handler(load_event("get_order.json"), lambda_context)

    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "application/json"
    body = json.loads(response["body"])
    assert body["order_id"] == "ord-1001"
    assert body["customer_id"] == "cust-42"
    assert body["status"] == "PAID"
    assert body["total_cents"] == 2 * 1599 + 250
    assert [item["sku"] for item in body["items"]] == ["BOOK-123", "PEN-7"]


def test_get_unknown_order_returns_404(lambda_context):
    response = app.lambda_handler(load_event("get_order_not_found.json"), lambda_context)

    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {
        "statusCode": 404,
        "message": "Order ord-missing not found",
    }


def test_list_orders_for_customer(lambda_context):
    response = app.lambda_handler(load_event("list_orders.json"), lambda_context)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert "ord-1001" in [order["order_id"] for order in body]
    assert {order["customer_id"] for order in body} == {"cust-42"}


def test_list_orders_requires_customer_id(lambda_context):
    event = load_event("list_orders.json")
    event["queryStringParameters"] = None
    event["multiValueQueryStringParameters"] = None

    response = app.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 422
    detail = json.loads(response["body"])["detail"]
    assert detail[0]["loc"] == ["query", "customer_id"]


def test_create_order(lambda_context, stdout_lines):
    event = load_event("create_order.json")

    response = app.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 201
    order = json.loads(response["body"])
    assert order["order_id"].startswith("ord-")
    assert order["customer_id"] == "cust-77"
    assert order["currency"] == "EUR"
    assert order["status"] == "PENDING"
    assert order["total_cents"] == 2 * 1250 + 3 * 499
    assert header(response, "Location") == f"/orders/{order['order_id']}"

    lines = stdout_lines()

    # Structured (JSON) log line, enriched with the Lambda context and correlation id.
    [log] = [line for line in lines if line.get("message") == "Order created"]
    assert log["level"] == "INFO"
    assert log["service"] == "orders-api"
    assert log["order_id"] == order["order_id"]
    assert log["total_cents"] == order["total_cents"]
    assert log["function_name"] == lambda_context.function_name
    assert log["function_request_id"] == lambda_context.aws_request_id
    assert log["correlation_id"] == event["requestContext"]["requestId"]

    # CloudWatch Embedded Metric Format blob flushed by @metrics.log_metrics.
    [emf] = [line for line in lines if "OrderCreated" in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "PantsPowertoolsExamples"
    assert {"Name": "OrderCreated", "Unit": "Count"} in directive["Metrics"]
    assert emf["OrderCreated"] == [1.0]
    assert emf["OrderItems"] == [2.0]
    assert emf["service"] == "orders-api"

    # The new order can be read back (same execution environment, in-memory store).
    get_event = load_event("get_order.json")
    get_event["path"] = f"/orders/{order['order_id']}"
    get_event["pathParameters"] = {"order_id": order["order_id"]}
    get_response = app.lambda_handler(get_event, lambda_context)
    assert get_response["statusCode"] == 200
    assert json.loads(get_response["body"]) == order


def test_create_order_rejects_invalid_body(lambda_context, stdout_lines):
    response = app.lambda_handler(load_event("create_order_invalid.json"), lambda_context)

    assert response["statusCode"] == 422
    detail = json.loads(response["body"])["detail"]
    assert [error["loc"] for error in detail] == [["body", "items", 0, "quantity"]]
    # No order was created, so no OrderCreated metric was emitted.
    assert not [line for line in stdout_lines() if "OrderCreated" in line]


def test_create_order_rejects_malformed_json(lambda_context):
    event = copy.deepcopy(load_event("create_order.json"))
    event["body"] = "{not json"

    response = app.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 422


def test_unknown_route_returns_404(lambda_context):
    event = load_event("get_order.json")
    event["httpMethod"] = "DELETE"

    response = app.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 404

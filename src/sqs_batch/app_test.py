import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_batch import app
from sqs_batch.fulfillment import UnknownSkuError, reserve_stock
from sqs_batch.models import OrderLine, OrderPlaced

# Message ids in events/order_placed_batch.json.
VALID_1 = "059f36b4-87a3-44ab-83d2-661975830a7d"
VALID_2 = "2e1424d4-f796-459a-8184-9c92662be6da"
MALFORMED_JSON = "9a2f0c1e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
SCHEMA_INVALID = "c8b1f6a2-5d4e-4f3a-9b2c-1d0e9f8a7b6c"
UNKNOWN_SKU = "4f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a0b9"


@dataclass
class FakeLambdaContext:
    function_name: str = "order-fulfillment"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:order-fulfillment"
    aws_request_id: str = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# Sample events live next to this file (a `resources` target in Pants, which strips the
# source root just like it does for the code, so the relative layout is the same).
EVENTS_DIR = Path(__file__).parent / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


class _CurrentStdout:
    """File-like object that always writes to whatever ``sys.stdout`` currently is."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def log_lines(capsys, monkeypatch):
    """Returns a callable giving the JSON log lines written to stdout.

    The Powertools Logger binds its StreamHandler to the ``sys.stdout`` object of the
    moment ``sqs_batch.app`` was imported, which is not the stream capsys swaps in for
    each test, so route the handler through the current ``sys.stdout`` instead.
    """
    monkeypatch.setattr(app.logger.registered_handler, "stream", _CurrentStdout())

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    return read


def test_single_valid_record_has_no_failures(lambda_context):
    response = app.lambda_handler(load_event("order_placed.json"), lambda_context)

    assert response == {"batchItemFailures": []}


def test_partial_batch_failure_reports_only_bad_records(lambda_context, log_lines):
    response = app.lambda_handler(load_event("order_placed_batch.json"), lambda_context)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": MALFORMED_JSON},
            {"itemIdentifier": SCHEMA_INVALID},
            {"itemIdentifier": UNKNOWN_SKU},
        ]
    }

    logs = log_lines()

    reserved = [line for line in logs if line.get("message") == "Stock reserved"]
    assert [(line["message_id"], line["order_id"]) for line in reserved] == [
        (VALID_1, "ord-2001"),
        (VALID_2, "ord-2002"),
    ]
    first = reserved[0]
    assert first["level"] == "INFO"
    assert first["service"] == "order-fulfillment"
    assert first["function_name"] == lambda_context.function_name
    assert first["function_request_id"] == lambda_context.aws_request_id
    assert reserved[1]["reserved"] == {"TEA-GREEN": 3, "MUG-01": 1}

    [rejected] = [line for line in logs if line.get("message") == "Rejecting order event"]
    assert rejected["level"] == "ERROR"
    assert rejected["message_id"] == UNKNOWN_SKU
    assert "GIZMO-404" in rejected["exception"]
    assert rejected["exception_name"] == "UnknownSkuError"

    [summary] = [line for line in logs if line.get("message") == "Batch processed"]
    assert summary["record_count"] == 5
    assert summary["failure_count"] == 3
    # Per-record keys don't leak into later log lines.
    assert "message_id" not in summary


def test_entire_batch_failure_raises_so_lambda_retries_it(lambda_context):
    event = load_event("order_placed_batch.json")
    event["Records"] = [
        r for r in event["Records"] if r["messageId"] in {MALFORMED_JSON, UNKNOWN_SKU}
    ]

    with pytest.raises(BatchProcessingError):
        app.lambda_handler(event, lambda_context)


def test_reserve_stock_sums_quantities_per_sku():
    order = OrderPlaced.model_validate(
        {
            "event_type": "OrderPlaced",
            "order_id": "ord-1",
            "customer_id": "cust-1",
            "placed_at": "2024-01-15T09:30:00Z",
            "lines": [{"sku": "PEN-7", "quantity": 2}, {"sku": "PEN-7", "quantity": 5}],
        }
    )

    assert reserve_stock(order) == {"PEN-7": 7}

    with pytest.raises(UnknownSkuError):
        reserve_stock(order.model_copy(update={"lines": [OrderLine(sku="NOPE", quantity=1)]}))

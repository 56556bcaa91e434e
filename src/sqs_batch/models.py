"""Message models for the order-fulfillment SQS consumer."""

from datetime import datetime

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json


class OrderLine(BaseModel):
    sku: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$")
    quantity: int = Field(gt=0, le=100)


class OrderPlaced(BaseModel):
    """Payload published (as JSON) to the queue when an order is placed."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = Field(pattern=r"^OrderPlaced$")
    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    placed_at: datetime
    lines: list[OrderLine] = Field(min_length=1)


class OrderPlacedRecord(SqsRecordModel):
    """An SQS record whose body is a JSON-encoded ``OrderPlaced`` event.

    ``Json[...]`` makes pydantic decode the string body before validating it, so records
    with malformed or schema-invalid bodies fail model validation, and the BatchProcessor
    reports them as failed items without calling the record handler.
    """

    body: Json[OrderPlaced]

"""Order-fulfillment consumer: an SQS-triggered Lambda with partial batch responses.

The event source mapping must have ``FunctionResponseTypes: [ReportBatchItemFailures]``,
so only the failed messages (listed in ``batchItemFailures``) go back to the queue and,
after maxReceiveCount attempts, to its dead-letter queue.

A record fails when its body is not valid JSON, does not match ``OrderPlaced`` (rejected by
the parser model before the handler runs) or references an unknown SKU (raised by the
record handler). If every record in a batch fails, the BatchProcessor raises
BatchProcessingError so Lambda retries the whole batch.
"""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from sqs_batch.fulfillment import UnknownSkuError, reserve_stock
from sqs_batch.models import OrderPlacedRecord

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS, model=OrderPlacedRecord)


@tracer.capture_method
def record_handler(record: OrderPlacedRecord) -> dict[str, int]:
    order = record.body
    logger.append_keys(message_id=record.messageId, order_id=order.order_id)
    try:
        try:
            reserved = reserve_stock(order)
        except UnknownSkuError:
            logger.exception("Rejecting order event")
            raise
        logger.info(
            "Stock reserved",
            customer_id=order.customer_id,
            line_count=len(order.lines),
            reserved=reserved,
            receive_count=int(record.attributes.ApproximateReceiveCount),
        )
        return reserved
    finally:
        logger.remove_keys(["message_id", "order_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    response = process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
    logger.info(
        "Batch processed",
        record_count=len(event.get("Records", [])),
        failure_count=len(response["batchItemFailures"]),
    )
    return response

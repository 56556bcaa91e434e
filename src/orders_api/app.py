"""Orders REST API (API Gateway REST API, Lambda proxy integration).

Routes:
    GET  /orders?customer_id=...   list a customer's orders
    GET  /orders/<order_id>        fetch one order
    POST /orders                   create an order (body validated against CreateOrderRequest)

Configuration comes from the usual Powertools environment variables, e.g.
POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL.

Note: no ``from __future__ import annotations`` here. With string annotations the
event handler's validation (3.37.0) does not see that ``request: CreateOrderRequest`` is a
pydantic model and treats it as a required *query* parameter, so every POST gets a 422.
"""

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from orders_api.models import CreateOrderRequest, Order
from orders_api.repository import InMemoryOrderRepository

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)

repository = InMemoryOrderRepository.with_sample_data()


@app.get("/orders")
@tracer.capture_method
def list_orders(customer_id: Annotated[str, Query(min_length=1, max_length=64)]) -> list[Order]:
    orders = repository.list_for_customer(customer_id)
    logger.info("Listed orders", customer_id=customer_id, order_count=len(orders))
    return orders


@app.get("/orders/<order_id>")
@tracer.capture_method
def get_order(order_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Order:
    order = repository.get(order_id)
    if order is None:
        logger.info("Order not found", order_id=order_id)
        raise NotFoundError(f"Order {order_id} not found")
    tracer.put_annotation(key="order_id", value=order_id)
    return order


@app.post("/orders")
@tracer.capture_method
def create_order(request: CreateOrderRequest) -> Response[Order]:
    order = Order.from_request(request)
    repository.save(order)

    tracer.put_annotation(key="order_id", value=order.order_id)
    logger.info(
        "Order created",
        order_id=order.order_id,
        customer_id=order.customer_id,
        item_count=len(order.items),
        total_cents=order.total_cents,
    )
    metrics.add_metric(name="OrderCreated", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OrderItems", unit=MetricUnit.Count, value=len(order.items))

    return Response(
        status_code=HTTPStatus.CREATED.value,
        content_type=content_types.APPLICATION_JSON,
        body=order,
        headers={"Location": f"/orders/{order.order_id}"},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)

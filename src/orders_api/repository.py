"""Order storage.

A real function would talk to DynamoDB; the example keeps orders in memory so it runs
anywhere (state lives as long as the Lambda execution environment does).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from orders_api.models import Order, OrderItem, OrderStatus


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._lock = threading.Lock()

    @classmethod
    def with_sample_data(cls) -> InMemoryOrderRepository:
        repo = cls()
        repo.save(
            Order(
                order_id="ord-1001",
                customer_id="cust-42",
                currency="USD",
                items=[
                    OrderItem(sku="BOOK-123", quantity=2, unit_price_cents=1599),
                    OrderItem(sku="PEN-7", quantity=1, unit_price_cents=250),
                ],
                total_cents=2 * 1599 + 250,
                status=OrderStatus.PAID,
                created_at=datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc),
            )
        )
        return repo

    def save(self, order: Order) -> None:
        with self._lock:
            self._orders[order.order_id] = order

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            return self._orders.get(order_id)

    def list_for_customer(self, customer_id: str) -> list[Order]:
        with self._lock:
            orders = [o for o in self._orders.values() if o.customer_id == customer_id]
        return sorted(orders, key=lambda o: o.created_at)

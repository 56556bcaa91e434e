"""Pydantic models for the orders REST API."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class OrderStatus(str, Enum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9-]+$")
    quantity: int = Field(gt=0, le=100)
    unit_price_cents: int = Field(gt=0, description="Unit price in the smallest currency unit.")


class CreateOrderRequest(BaseModel):
    """Body of ``POST /orders``."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    items: list[OrderItem] = Field(min_length=1, max_length=50)


class Order(BaseModel):
    order_id: str
    customer_id: str
    currency: str
    items: list[OrderItem]
    total_cents: int
    status: OrderStatus = OrderStatus.PENDING
    created_at: datetime

    @classmethod
    def from_request(cls, request: CreateOrderRequest) -> Order:
        return cls(
            order_id=f"ord-{uuid.uuid4().hex[:12]}",
            customer_id=request.customer_id,
            currency=request.currency,
            items=request.items,
            total_cents=sum(item.quantity * item.unit_price_cents for item in request.items),
            created_at=datetime.now(timezone.utc),
        )

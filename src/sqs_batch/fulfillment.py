"""Business logic: reserve stock for each line of a placed order."""

from sqs_batch.models import OrderPlaced

# Stand-in for a product catalogue / inventory service.
KNOWN_SKUS = frozenset({"BOOK-123", "PEN-7", "MUG-01", "TEA-GREEN", "TEA-BLACK"})


class UnknownSkuError(ValueError):
    """The order references a product that does not exist; retrying will not help."""


def reserve_stock(order: OrderPlaced) -> dict[str, int]:
    """Returns the quantity reserved per SKU, or raises if any SKU is unknown."""
    unknown = sorted({line.sku for line in order.lines} - KNOWN_SKUS)
    if unknown:
        raise UnknownSkuError(
            f"Order {order.order_id} references unknown SKUs: {', '.join(unknown)}"
        )

    reserved: dict[str, int] = {}
    for line in order.lines:
        reserved[line.sku] = reserved.get(line.sku, 0) + line.quantity
    return reserved

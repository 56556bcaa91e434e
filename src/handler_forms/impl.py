"""A plain handler, exported through `__all__` so that `star.py` can re-export it."""

import sys
from typing import Any, Dict

__all__ = ["handler"]


def python_version() -> str:
    """The interpreter's version as Lambda names runtimes, e.g. ``python3.12``."""
    return "python%d.%d" % sys.version_info[:2]


def handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    name = event.get("name", "world")
    return {
        "message": "Hello, %s!" % name,
        "form": "star-import",
        "request_id": getattr(context, "aws_request_id", None),
        "runtime": python_version(),
    }


def _helper() -> None:
    """Private, and left out of `__all__`: `star.py` must not see it."""

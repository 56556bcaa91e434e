"""The handler is an instance of a class with `__call__`: bound by a call at import time."""

import sys
from typing import Any, Dict


class Greeter:
    """Counts its invocations: state kept between warm invocations of one execution
    environment."""

    def __init__(self, greeting: str = "Hello") -> None:
        self.greeting = greeting
        self.calls = 0

    def __call__(self, event: Dict[str, Any], context: Any) -> Dict[str, Any]:
        self.calls += 1
        name = event.get("name", "world")
        return {
            "message": "%s, %s!" % (self.greeting, name),
            "form": "callable-object",
            "calls": self.calls,
            "request_id": getattr(context, "aws_request_id", None),
            "runtime": "python%d.%d" % sys.version_info[:2],
        }


handler = Greeter()

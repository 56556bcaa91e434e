"""A greeting API (API Gateway REST API, Lambda proxy integration) for the python3.13 runtime.

Routes:
    GET /hello/<name>   greet someone (``?greeting=...`` overrides "Hello")

It has no layers: its ZIP carries Powertools and everything Powertools needs (except what the
runtime provides), built for CPython 3.13 on x86_64 with hash-based .pyc. The code runs on
CPython 3.12 too (the python-default resolve's interpreter, which runs its unit test).
"""

import sys

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
app = APIGatewayRestResolver()

MAX_NAME_LENGTH = 64


def python_version() -> str:
    """The interpreter's version as Lambda names runtimes, e.g. ``python3.13``."""
    return "python%d.%d" % sys.version_info[:2]


@app.get("/hello/<name>")
def greet(name: str) -> dict:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequestError("name must be 1 to %d characters" % MAX_NAME_LENGTH)
    greeting = app.current_event.get_query_string_value("greeting", default_value="Hello")
    logger.info("Greeting", extra={"greeted": name, "greeting": greeting})
    return {
        "message": "%s, %s!" % (greeting, name),
        "runtime": python_version(),
        "cache_tag": sys.implementation.cache_tag,
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)

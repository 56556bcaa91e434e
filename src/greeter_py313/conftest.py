"""Powertools reads its configuration from environment variables when the Logger is
constructed, i.e. when ``greeter_py313.app`` is imported, so set them at conftest import time."""

import os

os.environ.update(
    {
        "POWERTOOLS_SERVICE_NAME": "greeter-py313",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)

"""Test configuration for the SQS batch consumer.

Powertools reads its configuration from environment variables when Logger/Tracer are
constructed, i.e. when ``sqs_batch.app`` is imported, so set them here at conftest import
time (before the test module imports the app). Tracing is disabled so no X-Ray daemon is
needed.
"""

import os

os.environ.update(
    {
        "POWERTOOLS_SERVICE_NAME": "order-fulfillment",
        "POWERTOOLS_METRICS_NAMESPACE": "PantsPowertoolsExamples",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)

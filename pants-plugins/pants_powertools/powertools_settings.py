"""The Powertools settings a function's BUILD target declares, as Lambda environment variables.

Teams set the same few variables on every function; declaring them next to the handler keeps
them in review with the code, and the manifest hands them to SAM, CDK or Terraform.
"""

from __future__ import annotations

from typing import Dict, Optional


def powertools_environment(
    service_name: Optional[str] = None,
    metrics_namespace: Optional[str] = None,
    log_level: Optional[str] = None,
    tracing: Optional[bool] = None,
) -> Dict[str, str]:
    env: Dict[str, str] = {}
    if service_name:
        env["POWERTOOLS_SERVICE_NAME"] = service_name
    if metrics_namespace:
        env["POWERTOOLS_METRICS_NAMESPACE"] = metrics_namespace
    if log_level:
        env["POWERTOOLS_LOG_LEVEL"] = log_level
    if tracing is not None:
        env["POWERTOOLS_TRACE_DISABLED"] = "false" if tracing else "true"
    return env

"""AWS Lambda's size and layer-count quotas, checked at build time instead of at deploy time.

A deploy that trips these fails late, in CloudFormation or Terraform, with a bare byte count;
checking while packaging lets the error name the target, the numbers and the biggest culprits.

Sources (AWS Lambda Developer Guide, "Lambda quotas"; `aws lambda get-account-settings`,
whose `AccountLimit` reports `"CodeSizeUnzipped": 262144000` and `"CodeSizeZipped": 52428800`):
- 250 MB unzipped for a function's deployment package plus all its layers; Lambda's own error
  reads "Unzipped size must be smaller than 262144000 bytes", so reaching it is already too big.
- 5 layers per function.
- 50 MB zipped for a direct upload through the Lambda API or SDKs; larger ZIPs must go through
  S3, so exceeding it is a warning, not an error.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

MAX_UNZIPPED_BYTES = 262_144_000  # 250 MiB, CodeSizeUnzipped: function + all of its layers.
MAX_LAYERS_PER_FUNCTION = 5
MAX_ZIPPED_DIRECT_UPLOAD_BYTES = 52_428_800  # 50 MiB, CodeSizeZipped.
# How many distributions an error lists: enough to find the culprit, short enough to read.
_LARGEST_SHOWN = 5


class LambdaLimitError(Exception):
    """An artifact Lambda would reject; the message says which quota and how to fix it."""


def format_bytes(size: int) -> str:
    """`262,144,000 bytes (250.0 MiB)`: exact for comparing with AWS, rounded for humans."""
    return f"{size:,} bytes ({size / (1024 * 1024):.1f} MiB)"


def check_layer_count(function_name: str, layer_names: Sequence[str]) -> None:
    """Raise if a function uses more layers than Lambda attaches."""
    if len(layer_names) > MAX_LAYERS_PER_FUNCTION:
        raise LambdaLimitError(
            f"{function_name} uses {len(layer_names)} layers ({', '.join(layer_names)}), but "
            f"Lambda allows at most {MAX_LAYERS_PER_FUNCTION} per function. Fix: merge layers "
            "(one powertools_layer can carry several requirements), or move what only this "
            "function needs into its own ZIP."
        )


def check_budget(
    function_name: str,
    function_unzipped: int,
    layers: Sequence[Tuple[str, int]],
    largest_distributions: Sequence[Tuple[str, int]],
    *,
    kind: str = "function",
) -> None:
    """Raise `LambdaLimitError` unless the function plus all its layers unzip below the quota.

    `layers` are (name, unzipped bytes); `largest_distributions` are (name or "name==version",
    unzipped bytes) across the function and its layers, so the message can point at what to
    remove. With `kind="layer"` and no layers, checks a layer on its own.
    """
    check_layer_count(function_name, [name for name, _ in layers])
    total = function_unzipped + sum(size for _, size in layers)
    if total < MAX_UNZIPPED_BYTES:
        return
    lines = [
        f"{function_name}: the {kind} ZIP"
        + (" and its layers unzip" if layers else " unzips")
        + f" to {format_bytes(total)}, but Lambda requires less than "
        f"{format_bytes(MAX_UNZIPPED_BYTES)} for a function and all of its layers together.",
        f"  {kind} ZIP: {format_bytes(function_unzipped)}",
    ]
    lines += [f"  layer {name}: {format_bytes(size)}" for name, size in layers]
    largest = sorted(largest_distributions, key=lambda d: (-d[1], d[0]))[:_LARGEST_SHOWN]
    if largest:
        lines.append("Largest contributors:")
        lines += [f"  {name}: {format_bytes(size)}" for name, size in largest]
    lines += [
        "Fix, by what helps most:",
        "  - leave out what the Lambda runtime already provides (boto3, botocore, ...): keep "
        "`exclude_runtime_provided` enabled and add them to `[powertools].runtime_provided`;",
        "  - drop dependencies this function does not import, or move them to a layer used "
        "only by the functions that need them (layers count towards the same quota, so a layer "
        "helps only by not being attached where it is not needed);",
        "  - for dependencies that cannot fit (ML libraries, browsers), deploy the function as "
        "a container image, which Lambda allows up to 10 GB.",
    ]
    raise LambdaLimitError("\n".join(lines))


def zipped_size_warning(name: str, size: int) -> Optional[str]:
    """A warning for a ZIP too big to upload directly to Lambda (it must go through S3)."""
    if size <= MAX_ZIPPED_DIRECT_UPLOAD_BYTES:
        return None
    return (
        f"{name} is {format_bytes(size)} zipped, above the "
        f"{format_bytes(MAX_ZIPPED_DIRECT_UPLOAD_BYTES)} Lambda accepts in a direct upload. "
        "Deploy it from S3 (SAM, CDK and Terraform's `s3_bucket` do this), or make it smaller: "
        "leave out runtime-provided distributions, or move dependencies into a layer."
    )

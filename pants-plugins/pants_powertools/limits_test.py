"""Tests for limits: AWS's exact numbers, boundaries, and messages that say what to do."""

from __future__ import annotations

import pytest

from pants_powertools.limits import (
    MAX_LAYERS_PER_FUNCTION,
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_DIRECT_UPLOAD_BYTES,
    LambdaLimitError,
    check_budget,
    check_layer_count,
    format_bytes,
    zipped_size_warning,
)


def test_quotas_are_awss_byte_counts() -> None:
    assert MAX_UNZIPPED_BYTES == 262_144_000 == 250 * 1024 * 1024
    assert MAX_ZIPPED_DIRECT_UPLOAD_BYTES == 52_428_800 == 50 * 1024 * 1024
    assert MAX_LAYERS_PER_FUNCTION == 5


def test_within_budget_passes() -> None:
    check_budget("src/orders:orders", 1_000, [("src/layers:powertools", 5_000_000)], [])
    check_budget("src/orders:orders", MAX_UNZIPPED_BYTES - 1, [], [])


def test_reaching_the_limit_fails_with_a_useful_message() -> None:
    with pytest.raises(LambdaLimitError) as e:
        check_budget(
            "src/orders:orders",
            2_144_000,
            [("src/layers:powertools", 200_000_000), ("src/layers:ml", 60_000_000)],
            [
                ("six==1.16.0", 10),
                ("botocore==1.35.0", 80_000_000),
                ("numpy==2.0", 90_000_000),
                ("a", 1),
                ("b", 2),
                ("c", 3),
            ],
        )
    message = str(e.value)
    assert message.startswith("src/orders:orders: ")
    assert "262,144,000 bytes (250.0 MiB)" in message  # The limit...
    assert f"{MAX_UNZIPPED_BYTES:,} bytes" in message and "less than" in message
    assert "layer src/layers:ml: 60,000,000 bytes" in message  # ...each part...
    assert message.index("numpy==2.0") < message.index("botocore==1.35.0")  # ...largest first...
    assert "six==1.16.0" in message and "a: 1 bytes" not in message  # ...only the top five...
    for fix in ("exclude_runtime_provided", "layer", "container image"):  # ...and the fixes.
        assert fix in message


def test_layer_alone_can_be_checked() -> None:
    with pytest.raises(LambdaLimitError, match="the layer ZIP unzips to"):
        check_budget("src/layers:big", MAX_UNZIPPED_BYTES + 1, [], [], kind="layer")


def test_too_many_layers() -> None:
    names = [f"l{i}" for i in range(MAX_LAYERS_PER_FUNCTION)]
    check_layer_count("fn", names)
    with pytest.raises(LambdaLimitError, match=r"fn uses 6 layers \(l0, .*l5\).*at most 5"):
        check_budget("fn", 1, [(n, 1) for n in names + ["l5"]], [])


def test_zipped_size_warning() -> None:
    assert zipped_size_warning("orders.zip", MAX_ZIPPED_DIRECT_UPLOAD_BYTES) is None
    warning = zipped_size_warning("orders.zip", MAX_ZIPPED_DIRECT_UPLOAD_BYTES + 1)
    assert warning is not None
    assert warning.startswith("orders.zip is 52,428,801 bytes")
    assert "S3" in warning


def test_format_bytes() -> None:
    assert format_bytes(1024 * 1024) == "1,048,576 bytes (1.0 MiB)"

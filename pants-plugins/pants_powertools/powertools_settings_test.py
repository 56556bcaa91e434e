from pants_powertools.powertools_settings import powertools_environment


def test_nothing_declared_sets_nothing() -> None:
    assert powertools_environment() == {}


def test_every_setting() -> None:
    assert powertools_environment("orders", "Shop", "DEBUG", False) == {
        "POWERTOOLS_SERVICE_NAME": "orders",
        "POWERTOOLS_METRICS_NAMESPACE": "Shop",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    assert powertools_environment(tracing=True) == {"POWERTOOLS_TRACE_DISABLED": "false"}

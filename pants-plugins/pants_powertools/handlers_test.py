from __future__ import annotations

import pytest

from pants_powertools.handlers import HandlerError, check_handler, reexport_source

APP = b"""
import json
from aws_lambda_powertools import Logger

logger = Logger()

@logger.inject_lambda_context
def lambda_handler(event, context):
    return {"ok": True}

async def other(event, context):
    return None

alias = lambda_handler
"""


@pytest.mark.parametrize("func", ["lambda_handler", "other", "alias", "Logger"])
def test_defined_names_pass(func: str) -> None:
    assert check_handler("src/a:fn", f"app.py:{func}", "pkg.app", func, {"pkg/app.py": APP}) == "pkg/app.py"


def test_package_module() -> None:
    sources = {"pkg/__init__.py": b"def handler(e, c): pass\n"}
    assert check_handler("src/a:fn", "pkg:handler", "pkg", "handler", sources) == "pkg/__init__.py"


def test_missing_module_names_target_and_paths() -> None:
    with pytest.raises(HandlerError) as e:
        check_handler("src/a:fn", "pkg.nope:handler", "pkg.nope", "handler", {"pkg/app.py": APP})
    message = str(e.value)
    assert "src/a:fn" in message and "pkg/nope.py" in message and "python_sources" in message


def test_missing_function_lists_top_level_names() -> None:
    with pytest.raises(HandlerError) as e:
        check_handler("src/a:fn", "app.py:handle", "pkg.app", "handle", {"pkg/app.py": APP})
    message = str(e.value)
    assert "src/a:fn" in message and "`handle`" in message and "lambda_handler" in message
    assert "after the `:`" in message


def test_nested_definitions_do_not_count() -> None:
    source = b"def outer():\n    def handler(e, c):\n        pass\n"
    with pytest.raises(HandlerError):
        check_handler("src/a:fn", "app.py:handler", "app", "handler", {"app.py": source})


def test_syntax_error_is_reported() -> None:
    with pytest.raises(HandlerError, match="does not parse"):
        check_handler("src/a:fn", "app.py:h", "app", "h", {"app.py": b"def h(:\n"})


def test_reexport_module_name_is_reserved() -> None:
    with pytest.raises(HandlerError, match="Rename the module"):
        check_handler("src/a:fn", "lambda_function.py:h", "lambda_function", "h", {"lambda_function.py": b"h = 1\n"})


def test_reexport_source_imports_the_handler() -> None:
    namespace: dict = {}
    module_source = reexport_source("json", "dumps")
    exec(compile(module_source, "lambda_function.py", "exec"), namespace)
    import json

    assert namespace["handler"] is json.dumps

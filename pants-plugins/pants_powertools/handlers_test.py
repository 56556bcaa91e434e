from __future__ import annotations

import textwrap
from typing import Dict, List

import pytest

from pants_powertools.handlers import (
    IMPORT_CHECK,
    HandlerCheck,
    HandlerError,
    check_handler,
    module_paths,
    reexport_source,
    validate_handler_spec,
)

TARGET = "src/orders:fn"

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


def check(
    source: str, func: str = "handler", module: str = "app", extra: Dict[str, bytes] = {}
) -> HandlerCheck:
    sources = {module.replace(".", "/") + ".py": textwrap.dedent(source).encode(), **extra}
    return check_handler(TARGET, f"{module.rpartition('.')[2]}.py:{func}", module, func, sources)


def error_of(
    source: str, func: str = "handler", module: str = "app", extra: Dict[str, bytes] = {}
) -> str:
    with pytest.raises(HandlerError) as e:
        check(source, func, module, extra)
    return str(e.value)


# ---- good handlers: verified ----


@pytest.mark.parametrize("func", ["lambda_handler", "alias"])
def test_defined_functions_are_verified(func: str) -> None:
    assert check_handler(
        TARGET, f"app.py:{func}", "pkg.app", func, {"pkg/app.py": APP}
    ) == HandlerCheck("pkg/app.py", True, None)


@pytest.mark.parametrize(
    "source",
    [
        "def handler(event, context):\n    return 1\n",
        "handler = lambda event, context: 1\n",
        "def impl(e, c): pass\nhandler = impl\n",
        "def impl(e, c): pass\nh2 = impl\nhandler: object = h2\n",
        "@logger.inject_lambda_context(log_event=True)\n@tracer.capture_lambda_handler\n"
        "def handler(e, c): pass\n",
        "handler = 1\ndef handler(e, c): pass\n",  # the last binding wins
        "def handler(*args): pass\n",
        "def handler(event, context=None, extra=1, *, region='x', **kw): pass\n",
        "def handler(event, context, /): pass\n",
        "@wraps_to_two_args\ndef handler(event): pass\n",  # decorators may change the signature
        "if DEBUG:\n    handler = 1\ndef handler(e, c): pass\n",
    ],
)
def test_plain_handlers_are_verified(source: str) -> None:
    assert check(source) == HandlerCheck("app.py", True, None)


def test_package_module() -> None:
    sources = {"pkg/__init__.py": b"def handler(e, c): pass\n"}
    assert check_handler(TARGET, "pkg:handler", "pkg", "handler", sources).path == "pkg/__init__.py"


# ---- what static analysis cannot see: not refused, verified=False with a note ----


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("from .impl import *\n", "possibly imported by `from .impl import *`"),
        ("from .impl import handler\n", "imported from `.impl`"),
        ("from impl import make as handler\n", "imported from `impl`"),
        ("import handler\n", "bound by `import handler`"),
        ("if True:\n    def handler(e, c): pass\n", "under a top-level `if` (app.py:2)"),
        (
            "try:\n    from fast import handler\n"
            "except ImportError:\n    def handler(e, c): pass\n",
            "top-level `try`",
        ),
        ("with ctx():\n    handler = make()\n", "top-level `with`"),
        ("for handler in [a]:\n    pass\n", "top-level `for`"),
        ("while True:\n    handler = 1\n    break\n", "top-level `while`"),
        ("handler = Mangum(app)\n", "bound to a call (`Mangum(app)`, app.py:1)"),
        ("handler = make_handler()\n", "bound to a call"),
        ("handler = some.attr\n", "bound to an expression (`some.attr`"),
        (
            "handler = functools.partial(impl, x=1)\n",
            "bound to a call (`functools.partial(impl, x=1)`",
        ),
        ("handler = a if b else c\n", "bound to an expression"),
        ("handler, other = make()\n", "assigned by unpacking"),
        ("(handler, *rest) = make()\n", "assigned by unpacking"),
        ("handler = impl = Mangum(app)\n", "bound to a call"),
        ("globals()['handler'] = make()\n", "the module calls `globals()`"),
        (
            "import sys\nsetattr(sys.modules[__name__], 'handler', f)\n",
            "the module uses `sys.modules`",
        ),
        ("def __getattr__(name):\n    return make(name)\n", "the module defines `__getattr__`"),
        (
            "def setup():\n    global handler\n    handler = make()\nsetup()\n",
            "declares `global handler`",
        ),
        ("handler = print\n", "bound to `print` (app.py:1), which the module does not define"),
        ("from x import make\nhandler = make\n", "imported from `x`"),
        ("handler = make()\nhandler += wrapper\n", "changed by an augmented assignment"),
        ("[handler := make() for _ in range(1)]\n", "bound by `:=`"),
        ("@asgiref_async_to_sync\nasync def handler(e, c): pass\n", "behind decorators"),
        ("@register\nclass handler:\n    pass\n", "class with decorators or a metaclass"),
        ("handler = 42\nfrom plugins import *\n", "possibly imported by `from plugins import *`"),
        ("HANDLER = 42\nexec(code)\n", "but the module calls `exec()`"),
    ],
)
def test_what_ast_cannot_see_is_not_refused(source: str, fragment: str) -> None:
    func = "HANDLER" if source.startswith("HANDLER") else "handler"
    result = check(source, func)
    assert not result.verified and result.path == "app.py"
    assert result.note is not None and fragment in result.note, result.note
    assert result.note.endswith(f"; {IMPORT_CHECK}.") and "\n" not in result.note


# ---- must fail at build time ----


@pytest.mark.parametrize(
    "source, func, fragments",
    [
        (
            "async def handler(event, context):\n    return 1\n",
            "handler",
            [
                "`handler` is an `async def` (app.py:1)",
                "coroutine is not JSON serializable",
                "asyncio.run(handler_async(event, context))",
                "async_process_partial_response",
            ],
        ),
        (
            "@logger.inject_lambda_context\n@event_source(data_class=X)\n"
            "async def handler(e, c): pass\n",
            "handler",
            ["`handler` is an `async def`", "asyncio.run"],
        ),
        (
            "async def impl(e, c): pass\nhandler = impl\n",
            "handler",
            [
                "`handler` is another name for `impl`, and `impl` is an `async def` (app.py:1)",
                "asyncio.run",
            ],
        ),
        (
            "HANDLER = 42\n",
            "HANDLER",
            ["`HANDLER` is bound to the number 42 (`42`, app.py:1), which cannot be called"],
        ),
        ("handler = 'app.main'\n", "handler", ["bound to a string"]),
        ("handler = f'{x}'\n", "handler", ["bound to an f-string"]),
        ("handler = None\n", "handler", ["bound to `None`"]),
        ("handler = True\n", "handler", ["bound to `True`"]),
        ("handler = [f]\n", "handler", ["bound to a list"]),
        ("handler = {'a': f}\n", "handler", ["bound to a dict"]),
        ("handler = {f}\n", "handler", ["bound to a set"]),
        ("handler = (f, g)\n", "handler", ["bound to a tuple"]),
        ("handler = -1\n", "handler", ["bound to the number 1"]),
        ("handler = 'a' + 'b'\n", "handler", ["bound to a string"]),
        ("handler: int = 3\n", "handler", ["bound to the number 3"]),
        ("handler = (x for x in y)\n", "handler", ["bound to a generator"]),
        (
            "X = 1\nhandler = X\n",
            "handler",
            ["`handler` is another name for `X`, and `X` is bound to the number 1"],
        ),
        (
            "class Handler:\n    def __call__(self, e, c): pass\n",
            "Handler",
            [
                "`Handler` is a class (app.py:1)",
                "constructs an instance",
                "fail to serialize",
                "`handler = Handler()`",
                "'app.py:handler'",
            ],
        ),
        (
            "class Impl: pass\nhandler = Impl\n",
            "handler",
            ["another name for `Impl`, and `Impl` is a class", "`handler_instance = handler()`"],
        ),
        (
            "def handler(event): pass\n",
            "handler",
            [
                "(app.py:1) takes 1 positional parameter, "
                "but Lambda calls it with (event, context)",
                "`def handler(event, context):`",
            ],
        ),
        ("def handler(): pass\n", "handler", ["takes 0 positional parameters"]),
        (
            "def handler(event, context, extra): pass\n",
            "handler",
            ["requires 3 positional parameters"],
        ),
        (
            "def handler(event, context, *, region): pass\n",
            "handler",
            ["requires the keyword-only parameter `region`"],
        ),
        (
            "def handler(e, c): pass\nhandler = 3\n",
            "handler",
            ["bound to the number 3 (`3`, app.py:2)"],
        ),
    ],
)
def test_handlers_that_cannot_work_fail(source: str, func: str, fragments: List[str]) -> None:
    message = error_of(source, func)
    assert message.startswith(f"The `handler` field of {TARGET} ('app.py:{func}') cannot work: ")
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    "module, sources, fragments",
    [
        (
            "orders_api.my-app",
            {"orders_api/my-app.py": b"def lambda_handler(e, c): pass\n"},
            [
                "`my-app` is not a valid Python identifier",
                "from orders_api.my-app import",
                "Rename orders_api/my-app.py to orders_api/my_app.py",
            ],
        ),
        (
            "my-service.app",
            {"my-service/app.py": b"def lambda_handler(e, c): pass\n"},
            ["`my-service` is not a valid Python identifier", "Rename my-service/ to my_service/"],
        ),
        (
            "orders.class",
            {"orders/class.py": b"def lambda_handler(e, c): pass\n"},
            ["`class` is a Python keyword", "Rename orders/class.py to orders/class_.py"],
        ),
        (
            "v2024.1fix",
            {"v2024/1fix.py": b"def lambda_handler(e, c): pass\n"},
            ["`1fix` is not a valid Python identifier", "to v2024/_1fix.py"],
        ),
    ],
)
def test_modules_that_cannot_be_imported_fail(
    module: str, sources: Dict[str, bytes], fragments: List[str]
) -> None:
    with pytest.raises(HandlerError) as e:
        check_handler(TARGET, "x.py:lambda_handler", module, "lambda_handler", sources)
    message = str(e.value)
    assert TARGET in message and "`handler` field" in message
    for fragment in fragments:
        assert fragment in message, message


def test_reexport_module_name_is_reserved() -> None:
    with pytest.raises(HandlerError, match="Rename your module"):
        check_handler(
            TARGET,
            "lambda_function.py:h",
            "lambda_function",
            "h",
            {"lambda_function.py": b"def h(e, c): pass\n"},
        )


def test_a_first_party_lambda_function_file_clashes_with_the_reexport() -> None:
    sources = {"app.py": b"def handler(e, c): pass\n", "lambda_function.py": b"X = 1\n"}
    with pytest.raises(HandlerError) as e:
        check_handler(TARGET, "app.py:handler", "app", "handler", sources)
    assert "first-party file lambda_function.py" in str(e.value) and "Rename it" in str(e.value)
    # Below the source root it is an ordinary module.
    sources = {"app.py": b"def handler(e, c): pass\n", "pkg/lambda_function.py": b"X = 1\n"}
    assert check_handler(TARGET, "app.py:handler", "app", "handler", sources).verified


def test_missing_module_names_target_and_paths() -> None:
    with pytest.raises(HandlerError) as e:
        check_handler(TARGET, "pkg.nope:handler", "pkg.nope", "handler", {"pkg/app.py": APP})
    message = str(e.value)
    assert TARGET in message and "pkg/nope.py" in message and "python_sources" in message


def test_missing_function_lists_top_level_names() -> None:
    with pytest.raises(HandlerError) as e:
        check_handler(TARGET, "app.py:handle", "pkg.app", "handle", {"pkg/app.py": APP})
    message = str(e.value)
    assert TARGET in message and "`handle`" in message and "lambda_handler" in message
    assert "after the `:`" in message


def test_nested_definitions_do_not_count() -> None:
    assert "defines no top-level `handler`" in error_of(
        "def outer():\n    def handler(e, c):\n        pass\n"
    )


def test_a_bare_annotation_binds_nothing() -> None:
    assert "defines no top-level `handler`" in error_of("handler: Callable\n")


def test_syntax_error_names_file_and_line() -> None:
    message = error_of("x = 1\ndef handler(:\n")
    assert "does not parse: app.py, line 2" in message and TARGET in message


def test_syntax_of_a_newer_python_is_left_to_the_import_check() -> None:
    source = b"match x:\n    case 1:\n        pass\ndef handler(e, c): pass\n"
    result = check_handler(
        TARGET, "app.py:handler", "app", "handler", {"app.py": source}, target_python=(3, 12)
    )
    assert not result.verified and result.note is not None and "app.py, line 1" in result.note
    with pytest.raises(HandlerError):
        check_handler(
            TARGET, "app.py:handler", "app", "handler", {"app.py": source}, target_python=(3, 9)
        )


@pytest.mark.parametrize(
    "func, fragment",
    [
        ("", "names no function after the `:`"),
        ("lambda", "is a Python keyword"),
        ("a.b", "one top-level name"),
    ],
)
def test_check_handler_rejects_bad_function_names_too(func: str, fragment: str) -> None:
    with pytest.raises(HandlerError, match=fragment):
        check_handler(TARGET, f"app.py:{func}", "app", func, {"app.py": b"x = 1\n"})


# ---- validate_handler_spec: before any rule runs ----


@pytest.mark.parametrize(
    "spec",
    [
        "app.py:lambda_handler",
        "src/orders/app.py:lambda_handler",
        "orders.app:lambda_handler",
        "app:handler",
        "pkg/lambda_function.py:handler",  # its module depends on the source root
        "lambda_function.py:handler",  # idem: check_handler decides
        "handler_*.py:handler",  # a glob Pants resolves to one file
        "./app.py:handler",
        "my-dir/app.py:handler",  # the directory may be the source root
    ],
)
def test_valid_specs_pass(spec: str) -> None:
    validate_handler_spec(TARGET, spec)


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ("", ["is empty", "'app.py:lambda_handler'"]),
        ("   ", ["is empty"]),
        ("app.py", ["has no `:`"]),
        ("app.py:", ["names no function after the `:`", "'app.py:lambda_handler'"]),
        (":handler", ["names no file or module before the `:`"]),
        ("../shared/app.py:handler", ["goes up with `..`", "module path"]),
        ("src/../app.py:handler", ["goes up with `..`"]),
        ("..app:handler", ["goes up with `..`"]),
        ("/abs/app.py:handler", ["absolute"]),
        (
            "app.py:lambda-handler",
            ["`lambda-handler`, which is not a valid Python identifier", "'app.py:lambda_handler'"],
        ),
        ("app.py:class", ["is a Python keyword", "'app.py:class_'"]),
        (
            "app.py:Handler.handle",
            ["one top-level name", "handler = Handler.handle", "'app.py:handler'"],
        ),
        ("app.py:a:b", ["`a:b`, which is not a valid Python identifier"]),
        (
            "my-app.py:lambda_handler",
            [
                "file my-app.py",
                "`my-app` is not a valid Python identifier",
                "'my_app.py:lambda_handler'",
            ],
        ),
        ("src/2fast.py:h", ["`2fast` is not a valid Python identifier", "'src/_2fast.py:h'"]),
        ("orders.my-app:h", ["`my-app` is not a valid Python identifier"]),
        (
            "orders/app:h",
            [
                "`orders/app` is not a valid Python identifier",
                "For a file, write 'orders/app.py:h'",
            ],
        ),
        ("lambda_function:handler", ["generates `lambda_function.py`", "Rename your module"]),
        ("lambda_function.impl:handler", ["generates `lambda_function.py`"]),
    ],
)
def test_invalid_specs_fail(spec: str, fragments: List[str]) -> None:
    with pytest.raises(HandlerError) as e:
        validate_handler_spec(TARGET, spec)
    message = str(e.value)
    assert TARGET in message and "`handler` field" in message
    for fragment in fragments:
        assert fragment in message, message


# ---- the re-export ----


def test_reexport_source_imports_the_handler() -> None:
    namespace: dict = {}
    module_source = reexport_source("json", "dumps")
    exec(compile(module_source, "lambda_function.py", "exec"), namespace)
    import json

    assert namespace["handler"] is json.dumps


def test_module_paths() -> None:
    assert module_paths("pkg.app") == ["pkg/app.py", "pkg/app/__init__.py"]

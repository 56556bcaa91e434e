from types import SimpleNamespace

from handler_forms import callable_obj, impl, star


def test_star_import_reexports_only_all() -> None:
    assert star.handler is impl.handler
    assert not hasattr(star, "_helper")
    assert not hasattr(star, "python_version")
    context = SimpleNamespace(aws_request_id="req-1")
    response = star.handler({"name": "Ada"}, context)
    assert response["message"] == "Hello, Ada!"
    assert response["form"] == "star-import"
    assert response["request_id"] == "req-1"


def test_callable_object_keeps_state_between_calls() -> None:
    greeter = callable_obj.Greeter("Bonjour")
    context = SimpleNamespace(aws_request_id="req-2")
    assert greeter({"name": "Grace"}, context)["message"] == "Bonjour, Grace!"
    second = greeter({}, context)
    assert second["message"] == "Bonjour, world!"
    assert second["calls"] == 2
    assert callable(callable_obj.handler)
    assert isinstance(callable_obj.handler, callable_obj.Greeter)

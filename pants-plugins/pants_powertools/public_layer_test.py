from __future__ import annotations

import pytest

from pants_powertools.complete_platforms import marker_environment
from pants_powertools.public_layer import PublicLayerError, powertools_closure, public_layer_arn


def test_arn_template() -> None:
    assert public_layer_arn("python3.12", "arm64", 18) == (
        "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:18"
    )
    assert public_layer_arn("python3.9", "x86_64", 7).endswith("-python39-x86_64:7")
    with pytest.raises(ValueError, match="python3.8"):
        public_layer_arn("python3.8", "x86_64", 1)
    with pytest.raises(PublicLayerError):
        public_layer_arn("python3.12", "x86_64", 0)


POWERTOOLS = """Metadata-Version: 2.1
Name: aws-lambda-powertools
Version: 3.37.0
Requires-Dist: jmespath<2.0.0,>=1.0.1
Requires-Dist: typing-extensions<5.0.0,>=4.11.0
Provides-Extra: parser
Requires-Dist: pydantic<3.0.0,>=2.4.0; extra == "parser"
Provides-Extra: tracer
Requires-Dist: aws-xray-sdk<3.0.0,>=2.8.0; extra == "tracer"
Requires-Dist: legacy-thing; python_version < "3.8"

Long description: Requires-Dist: not-a-header
"""


def test_closure_follows_every_extra_and_transitive_deps() -> None:
    metadata = {
        "aws_lambda_powertools": POWERTOOLS,
        "jmespath": "Name: jmespath\n",
        "typing-extensions": "Name: typing-extensions\n",
        "pydantic": (
            "Name: pydantic\nRequires-Dist: pydantic-core==2.50.5\n"
            "Requires-Dist: email-validator; extra == 'email'\n"
        ),
        "pydantic-core": "Name: pydantic-core\n",
        "aws-xray-sdk": (
            "Name: aws-xray-sdk\nRequires-Dist: wrapt\nRequires-Dist: botocore>=1.11.3\n"
        ),
        "wrapt": "Name: wrapt\n",
        "botocore": "Name: botocore\n",
        "legacy-thing": "Name: legacy-thing\n",
        "email-validator": "Name: email-validator\n",
        "orders-lib": "Name: orders-lib\nRequires-Dist: aws-lambda-powertools\n",
    }
    closure = powertools_closure(metadata, marker_environment("python3.12", "x86_64"))
    assert closure == {
        "aws-lambda-powertools",
        "jmespath",
        "typing-extensions",
        "pydantic",
        "pydantic-core",
        "aws-xray-sdk",
        "wrapt",
        "botocore",
    }


def test_no_powertools_no_closure() -> None:
    assert (
        powertools_closure({"six": "Name: six\n"}, marker_environment("python3.12", "arm64"))
        == set()
    )

"""AWS CDK (Python) stack for the artifacts of `pants package ::` (see docs/deploy-cdk.md).

Everything about the code is read from the `.lambda.json` manifests that Pants writes next to
each ZIP: the ZIP itself (`Code.from_asset` uploads a .zip as it is), handler, runtime,
architecture, layers and environment. Only names, memory, timeouts and triggers are set here.

    cd docs/examples && cdk synth --app "python3 cdk_stack.py"
"""

import json
from pathlib import Path
from typing import Any, Dict

from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# `pants package` writes to <repo>/dist; this file is <repo>/docs/examples/cdk_stack.py.
DIST = Path(__file__).resolve().parents[2] / "dist"

# powertools_layer `src:powertools`: one ZIP (and manifest) per architecture.
LAYER_MANIFESTS = ("src/powertools-x86_64.lambda.json", "src/powertools-arm64.lambda.json")
# python_aws_lambda_powertools targets, by construct id.
FUNCTION_MANIFESTS = {
    "OrdersApi": "src.orders_api/lambda.lambda.json",
    "OrderFulfillment": "src.sqs_batch/lambda.lambda.json",
    "OrderFulfillmentPublicLayer": "src.sqs_batch/lambda-public-layer.lambda.json",
}
ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


def read_manifest(dist: Path, name: str) -> Dict[str, Any]:
    return json.loads((dist / name).read_text())


def runtime(name: str) -> lambda_.Runtime:
    # The manifest's name ("python3.12"), so a runtime change in BUILD needs no edit here.
    return lambda_.Runtime(name, lambda_.RuntimeFamily.PYTHON)


class PowertoolsExamplesStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, dist: Path = DIST, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # A function manifest names its built layers by `artifact`.
        layers_by_artifact = {}
        for name in LAYER_MANIFESTS:
            manifest = read_manifest(dist, name)
            architectures = manifest["architectures"]
            layers_by_artifact[manifest["artifact"]] = lambda_.LayerVersion(
                self,
                "PowertoolsLayer-" + "-".join(architectures),
                code=lambda_.Code.from_asset(str(dist / manifest["artifact"])),
                compatible_runtimes=[runtime(manifest["runtime"])],
                compatible_architectures=[ARCHITECTURES[arch] for arch in architectures],
                description="Powertools for AWS Lambda (Python), built by Pants (src:powertools)",
            )

        self.functions: Dict[str, lambda_.Function] = {}
        for construct_id, name in FUNCTION_MANIFESTS.items():
            manifest = read_manifest(dist, name)
            layers = []
            for layer in manifest["layers"]:
                if "arn" in layer:  # A public layer: its ARN has a `{region}` placeholder.
                    arn = layer["arn"].replace("{region}", self.region)
                    layers.append(
                        lambda_.LayerVersion.from_layer_version_arn(self, construct_id + "Layer", arn)
                    )
                else:
                    layers.append(layers_by_artifact[layer["artifact"]])
            environment = manifest["environment"]
            self.functions[construct_id] = lambda_.Function(
                self,
                construct_id,
                code=lambda_.Code.from_asset(str(dist / manifest["artifact"])),
                handler=manifest["handler"],
                runtime=runtime(manifest["runtime"]),
                architecture=ARCHITECTURES[manifest["architectures"][0]],
                layers=layers,
                environment=environment,
                tracing=(
                    lambda_.Tracing.ACTIVE
                    if environment.get("POWERTOOLS_TRACE_DISABLED") == "false"
                    else lambda_.Tracing.PASS_THROUGH
                ),
                memory_size=256,
                timeout=Duration.seconds(30),
            )

        # The SQS trigger of order-fulfillment: partial batch responses, as its handler expects.
        dead_letters = sqs.Queue(self, "OrderPlacedDeadLetterQueue")
        queue = sqs.Queue(
            self,
            "OrderPlacedQueue",
            visibility_timeout=Duration.seconds(180),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dead_letters),
        )
        self.functions["OrderFulfillment"].add_event_source(
            event_sources.SqsEventSource(queue, batch_size=10, report_batch_item_failures=True)
        )


if __name__ == "__main__":
    app = App()
    PowertoolsExamplesStack(app, "PantsPowertoolsExamples")
    app.synth()

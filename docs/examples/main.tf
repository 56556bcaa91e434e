# Terraform for the example artifacts of `pants package ::` (see docs/deploy-terraform.md).
#
# Everything about the code comes from the `.lambda.json` manifests that Pants writes next to
# each ZIP: file name, CodeSha256 (as `source_code_hash`), handler, runtime, architectures,
# layers and environment. Only names, roles, memory and triggers are written here.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

data "aws_region" "current" {}

locals {
  # `pants package` writes to <repo>/dist; this file is <repo>/docs/examples/main.tf.
  dist = "${path.module}/../../dist"

  # powertools_layer `src:powertools`: one ZIP (and manifest) per architecture.
  layer_manifests = {
    x86_64 = jsondecode(file("${local.dist}/src/powertools-x86_64.lambda.json"))
    arm64  = jsondecode(file("${local.dist}/src/powertools-arm64.lambda.json"))
  }

  # python_aws_lambda_powertools targets, by function name.
  function_manifests = {
    orders-api                     = jsondecode(file("${local.dist}/src.orders_api/lambda.lambda.json"))
    order-fulfillment              = jsondecode(file("${local.dist}/src.sqs_batch/lambda.lambda.json"))
    order-fulfillment-public-layer = jsondecode(file("${local.dist}/src.sqs_batch/lambda-public-layer.lambda.json"))
  }

  # A function manifest names its built layers by `artifact` and public layers by `arn`.
  layer_arn_by_artifact = {
    for arch, layer in aws_lambda_layer_version.powertools :
    local.layer_manifests[arch].artifact => layer.arn
  }
}

resource "aws_lambda_layer_version" "powertools" {
  for_each = local.layer_manifests

  layer_name               = "pants-powertools-${replace(each.value.runtime, ".", "")}-${each.key}"
  description              = "Powertools for AWS Lambda (Python), built by Pants (src:powertools)"
  filename                 = "${local.dist}/${each.value.artifact}"
  source_code_hash         = each.value.code_sha256
  compatible_runtimes      = [each.value.runtime]
  compatible_architectures = each.value.architectures
}

resource "aws_lambda_function" "this" {
  for_each = local.function_manifests

  function_name    = each.key
  role             = aws_iam_role.lambda.arn
  filename         = "${local.dist}/${each.value.artifact}"
  source_code_hash = each.value.code_sha256
  handler          = each.value.handler
  runtime          = each.value.runtime
  architectures    = each.value.architectures
  memory_size      = 256
  timeout          = 30

  layers = [
    for layer in each.value.layers :
    can(layer.arn)
    ? replace(layer.arn, "{region}", data.aws_region.current.name)
    : local.layer_arn_by_artifact[layer.artifact]
  ]

  dynamic "environment" {
    for_each = length(each.value.environment) > 0 ? [each.value.environment] : []
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = lookup(each.value.environment, "POWERTOOLS_TRACE_DISABLED", "true") == "false" ? "Active" : "PassThrough"
  }
}

# The SQS trigger of order-fulfillment: partial batch responses, as its handler expects.
resource "aws_sqs_queue" "order_placed_dlq" {
  name = "order-placed-dlq"
}

resource "aws_sqs_queue" "order_placed" {
  name                       = "order-placed"
  visibility_timeout_seconds = 180
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.order_placed_dlq.arn
    maxReceiveCount     = 3
  })
}

resource "aws_lambda_event_source_mapping" "order_placed" {
  event_source_arn        = aws_sqs_queue.order_placed.arn
  function_name           = aws_lambda_function.this["order-fulfillment"].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}

resource "aws_iam_role" "lambda" {
  name = "pants-powertools-examples"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "lambda" {
  for_each = toset([
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
  ])
  role       = aws_iam_role.lambda.name
  policy_arn = each.value
}

output "function_code_sha256" {
  description = "CodeSha256 of each function, as Lambda reports it after the deploy."
  value       = { for name, fn in aws_lambda_function.this : name => fn.code_sha256 }
}

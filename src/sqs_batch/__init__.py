"""Order-fulfillment SQS consumer example Lambda function (partial batch responses + Powertools)."""

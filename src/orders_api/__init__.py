"""Orders REST API example Lambda function (API Gateway REST API + Powertools)."""

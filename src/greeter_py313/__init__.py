"""Greeter example Lambda function for the python3.13 runtime (Powertools bundled, no layer)."""

"""Pipelines: plain functions that run one experiment end to end (data, model, attack or
measure, report files) for a command; progress through callbacks, no Click."""

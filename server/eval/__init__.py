"""Evaluation: evaluator and reward models, metrics, the protocol, the stick-figure renderer."""

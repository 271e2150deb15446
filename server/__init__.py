"""SoPo Motion server: data, models, training, evaluation, fine-tuning and the ZeroMQ service."""

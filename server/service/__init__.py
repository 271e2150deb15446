"""The ZeroMQ motion service, picks store, security, models folder and Python client."""

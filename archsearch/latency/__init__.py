"""Latency and cost of architectures, always on the inference-time (reparameterized) model."""

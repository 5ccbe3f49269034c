"""Decoding: greedy and beam search, and batched generation."""

"""Data: readers, tokenizers, vocabulary, batching and synthetic tasks."""

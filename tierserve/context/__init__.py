"""Conversation context: stores (Redis, in-memory) and the sliding window per model."""

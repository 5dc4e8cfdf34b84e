"""shard."""

"""Reading twhin-data's shards back the way a trainer does (the shards' first client)."""

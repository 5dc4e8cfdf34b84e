"""hydrate: tweet IDs (or archives) -> tweets/ and unavailable/, one record per distinct ID.

transform.py HydrateTweets (ID shards, batches, the lookup); lookup.py (the X API lookup DoFn and
settling its rows); resume.py (a previous run's results); ids.py (ID files, ReadTweetIds);
archives.py (twarc2 / v2 / v1.1 archives, ReadArchives)."""

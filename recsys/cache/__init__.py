"""The Redis contract between publishing and serving: key layout, pick encoding, servers."""

"""The picks explorer: web pages under `/explorer` for the people who run the agent programme.

Merchandisers and agent managers see what an agent is served and why, compare two variants or
snapshots side by side, check the live snapshot, lift suspensions and open the A/B reports.
Server-rendered (Jinja2, a little plain JavaScript, no CDN assets), behind an admin-key login.
"""

from serving.explorer.router import build_router, mount_static

__all__ = ["build_router", "mount_static"]

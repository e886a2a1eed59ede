"""Fixtures: a real toxiproxy-server, a client that checks for leaked toxics, a local upstream."""

from faults.support import proxy, toxi, toxiproxy_server, toxiproxy_state_dir, upstream, upstream_url

__all__ = ["proxy", "toxi", "toxiproxy_server", "toxiproxy_state_dir", "upstream", "upstream_url"]

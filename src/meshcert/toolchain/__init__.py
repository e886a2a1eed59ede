"""Pinned upstream binaries and locally built images: everything a cluster needs, nothing pulled."""

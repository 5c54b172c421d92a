"""The one error of the TabMWP package: bad or missing input."""


class TabmwpError(ValueError):
    """Bad or missing TabMWP input: an unreadable file, a failed checksum, an unknown task."""

"""Wyoming server and shared client core for the 60db cloud speech API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wyoming-60db")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]

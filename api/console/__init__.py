"""The operator console: pages served by the service itself, assets shipped in the package."""

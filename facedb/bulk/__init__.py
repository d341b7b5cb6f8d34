"""Registers in and out in bulk: manifests (``manifest.py``), `facedb import`
(``importer.py``) and `facedb export` (``exporter.py``)."""

"""Installing the models (``facedb models install|add|status``): what they are and where
(``catalog``, the one module serving code imports, with ``cards``), fetching, converting,
checking. Nothing here but ``catalog`` and ``cards`` is imported while serving."""

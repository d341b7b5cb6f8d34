"""The one place deepface is configured: its home folder, and no downloads, ever.

deepface fetches missing weights from the web the first time a model is built. A service
must not (air-gapped sites, request latency, supply chain), so the download hook is
replaced by one that raises ModelsMissing naming the install step.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from facedb.errors import ModelsMissing

_lock = threading.Lock()
_configured_home: Path | None = None


def configure_deepface(model_dir: Path) -> None:
    """Point deepface at ``model_dir`` and disable its downloader. Idempotent."""
    global _configured_home
    with _lock:
        if _configured_home == model_dir:
            return
        os.environ["DEEPFACE_HOME"] = str(model_dir)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        _import_tensorflow(quiet=not logging.getLogger("tensorflow").isEnabledFor(logging.INFO))
        from deepface.commons import weight_utils

        weight_utils.download_weights_if_necessary = _refuse_download
        _configured_home = model_dir


def _import_tensorflow(quiet: bool) -> None:
    """Import TensorFlow, hiding what its C++ side prints to stderr while it loads.

    TensorFlow writes its CUDA and oneDNN notices before its logging is set up, so no
    environment variable silences them; `facedb -v` (INFO on the tensorflow logger) shows them.
    """
    if not quiet or "tensorflow" in sys.modules:
        import tensorflow

        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _refuse_download(file_name: str, source_url: Any = None, compress_type: Any = None) -> str:
    from deepface.commons import folder_utils

    home = folder_utils.get_deepface_home()
    target = Path(home) / ".deepface" / "weights" / file_name
    if target.is_file():
        return str(target)
    raise ModelsMissing(
        f"deepface model weights {file_name} are not installed at {target}. "
        "Run `facedb models install`; FaceDB never downloads models while serving."
    )

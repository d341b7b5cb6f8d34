"""Settings: environment variables prefixed ``FACEDB_`` over an optional TOML file.

Precedence, highest first: keyword overrides (tests), environment, the TOML file named by
``FACEDB_CONFIG_FILE`` (default ``<data_dir>/facedb.toml`` when it exists), defaults.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from facedb.domain import AxisMode, IndexBackend, IndexKind

# deepface's detector backends. Only those whose weights ship inside a PyPI package work
# offline; `facedb models status` says which of them are usable on this machine.
DETECTORS = (
    "mtcnn",
    "opencv",
    "ssd",
    "dlib",
    "retinaface",
    "mediapipe",
    "yolov8",
    "yolov11n",
    "yunet",
    "fastmtcnn",
    "centerface",
)


def is_milvus_server(uri: str) -> bool:
    """Whether a Milvus URI names a server (an address) rather than a Milvus Lite file."""
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the optional TOML configuration file; a missing file contributes nothing."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_file_path()
        if path is None or not path.is_file():
            return {}
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        return {key: value for key, value in data.items() if key in Settings.model_fields}


def config_file_path() -> Path | None:
    """Return the TOML file the settings read (it may not exist yet)."""
    explicit = os.environ.get("FACEDB_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    data_dir = Path(os.environ.get("FACEDB_DATA_DIR", "data"))
    return data_dir / "facedb.toml"


class Settings(BaseSettings):
    """Every tunable of the service, validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix="FACEDB_", env_nested_delimiter="__")

    data_dir: Path = Field(default=Path("data"), description="Database file and index snapshot.")
    database_url: str = Field(default="", description="Empty: SQLite file in data_dir.")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "facedb",
        description="Downloaded packages, sample photos and (by default) the models.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Default: <cache_dir>/models, shared by every data directory of this user.",
    )

    detector: str = "mtcnn"
    detect_max_side: int = Field(default=1024, ge=160, le=4096)
    min_face_size: int = Field(default=20, ge=1)
    min_confidence: float = Field(default=0.80, ge=0.0, le=1.0)

    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=50_000_000, ge=10_000)
    # One upload request: how many files, and how many pixels all its photos hold together.
    max_upload_files: int = Field(default=20, ge=1, le=1000)
    max_request_pixels: int = Field(default=150_000_000, ge=10_000)
    # Photos decoded and analysed at once in this process; each decoded photo holds
    # width x height x 3 bytes, so this bounds the pipeline's memory under load.
    inference_threads: int = Field(default=2, ge=1, le=64)

    # The embedding recipe an empty database takes and `facedb reindex --re-embed` moves a
    # database to: empty = the default; `facedb models status` lists them (docs/ACCURACY.md).
    recipe: str = ""

    # The age axis (docs/ACCURACY.md, "Register scale"): `auto` learns it from the faces held
    # and removes it from every embedding and search once they pass its guard (at least 200
    # faces with an age, children and adults among them), tries again after a refusal once
    # the faces have grown by age_axis_retry_growth, and learns it again (a re-embed) once
    # they have grown by age_axis_relearn_growth since it was learned (3.0: at 4x the faces;
    # one learned from 500 of a register's 5,486 faces lies within |cos| 0.97 of the whole's
    # and searches as well, one from 200 kept only dlib's: bench.axis_growth). `off`: never.
    age_axis: AxisMode = AxisMode.AUTO
    age_axis_retry_growth: float = Field(default=0.25, gt=0.0, le=100.0)
    age_axis_relearn_growth: float = Field(default=3.0, gt=0.0, le=100.0)

    # Cosine similarity at or above which a candidate is reported as a match: the score
    # that 1 in 10,000 stranger pairs reaches (FAR 1e-4) on lfw-dev with the current
    # embedding recipe (docs/ACCURACY.md); `facedb calibrate` measures it on your photos.
    # Empty: the recipe's own value (0.59 for the default recipe).
    match_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)

    # Cross-matching the missing register against the found one: candidate pairs for people
    # to review, so the floor is far below the match threshold. Cross-age pairs of the same
    # person score low, so the list is bounded by rank (candidates_per_face) and the floor
    # only drops pairs that score like a typical stranger pair: 0.22 is reached by 1 stranger
    # pair in 10 (FAR 10%) on lfw-dev (docs/ACCURACY.md).
    candidates_per_face: int = Field(default=10, ge=1, le=100)
    # Empty: the recipe's own value (0.22 for the default recipe).
    candidate_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)

    # A unit that wants every rejection explained: rejecting a pair without a note is
    # refused (422), and the console asks for one. Confirmations may always carry a note.
    reject_note_required: bool = False

    # A face's estimated gender is reported only when its probability (two networks pooled,
    # made honest for the face's estimated age) is at least this, else `unknown`
    # (docs/ACCURACY.md: how it was chosen on photos apart from those it was judged on).
    gender_min_probability: float = Field(default=0.60, ge=0.5, le=1.0)

    # Face image quality (0-100, docs/QUALITY.md): an enrolled face below quality_warn_below
    # is stored with a warning saying why and which photo to look for instead; one below
    # quality_floor is refused (0: none is).
    quality_warn_below: int = Field(default=40, ge=0, le=100)
    quality_floor: int = Field(default=0, ge=0, le=100)

    index_backend: IndexBackend = IndexBackend.FAISS
    index_kind: IndexKind = IndexKind.FP16
    index_ivf_nlist: int = Field(default=1024, ge=1)
    index_ivf_nprobe: int = Field(default=32, ge=1)
    index_device: Literal["auto", "cpu", "gpu"] = "auto"
    # With FACEDB_INDEX_BACKEND=milvus: a local path runs Milvus Lite in this process (one
    # process per file; empty: <data_dir>/milvus.db), http://host:19530 a Milvus server.
    milvus_uri: str = ""
    milvus_token: str = Field(default="", description="user:password or an API key")
    milvus_collection: str = Field(default="facedb_faces", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated);
    # from anyone else the audit records the socket peer.
    trusted_proxies: str = ""
    # Keyless local mode answers only requests addressed to a loopback name (localhost,
    # 127.0.0.1, [::1]): a web page elsewhere cannot reach it by DNS rebinding. Other names
    # the service is reached by (comma-separated, e.g. facedb.lan) are added here.
    allowed_hosts: str = ""
    # A file of base64-encoded 256-bit data keys (the first seals; later lines open what
    # earlier keys sealed): photos, crops and embeddings are sealed at rest with AES-GCM.
    # Unset: stored in plaintext. `facedb keys new-data-key FILE` writes one.
    data_key_file: Path | None = None
    # The largest request body accepted, refused from its declared length before a byte of
    # it is read (and by counting, for a body sent without a length).
    max_request_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)

    # Notifications: a JSON event POSTed for each new pending pair (at or above
    # notify_min_score; unset: every one) and each decision, from an outbox written with
    # them, delivered at least once; with a secret, signed (HMAC-SHA256 of the body).
    webhook_url: str = ""
    webhook_secret: str = ""
    notify_min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    # A failed attempt is tried again after 5 s, 10 s, 20 s, ... (at most an hour apart);
    # after webhook_max_attempts the event is parked: kept, shown in health, re-sent on request.
    webhook_retry_s: float = Field(default=5.0, gt=0.0, le=3600.0)
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, value: str) -> str:
        if value not in DETECTORS:
            raise ValueError(f"unknown detector {value!r}; choose one of {', '.join(DETECTORS)}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL with a host (for example "
                "https://hooks.example.org/facedb); unset it to send no notifications"
            )
        return value

    @field_validator("milvus_uri")
    @classmethod
    def _lite_file_name(cls, value: str) -> str:
        if value and not is_milvus_server(value) and not value.endswith(".db"):
            raise ValueError(
                f"{value!r}: a Milvus Lite path must end in .db (or give a server's "
                "http://host:19530 address)"
            )
        return value

    @model_validator(mode="after")
    def _milvus_is_exact(self) -> Settings:
        if self.index_backend == IndexBackend.MILVUS and self.index_kind == IndexKind.IVF:
            raise ValueError(
                "FACEDB_INDEX_KIND=ivf applies to the faiss backend; the Milvus backend "
                "searches exactly (a FLAT index): unset FACEDB_INDEX_KIND"
            )
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.cache_dir = self.cache_dir.expanduser().resolve()
        if self.model_dir is None:
            self.model_dir = self.cache_dir / "models"
        self.model_dir = self.model_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'facedb.sqlite3'}"
        return self

    @property
    def models_path(self) -> Path:
        """Return the model directory (always set after validation)."""
        assert self.model_dir is not None
        return self.model_dir

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Return the networks whose X-Forwarded-For header is trusted."""
        return [ipaddress.ip_network(item, strict=False) for item in _split(self.trusted_proxies)]

    @property
    def extra_hosts(self) -> frozenset[str]:
        """Return the host names keyless mode accepts besides the loopback ones."""
        return frozenset(h.lower() for h in _split(self.allowed_hosts))

    @property
    def milvus_location(self) -> str:
        """Return the Milvus URI: the server's address, or the Milvus Lite file's path."""
        if not self.milvus_uri:
            return str(self.data_dir / "milvus.db")
        if is_milvus_server(self.milvus_uri):
            return self.milvus_uri
        return str(Path(self.milvus_uri).expanduser().resolve())

    @property
    def index_dir(self) -> Path:
        """Return the folder holding the FAISS index snapshot."""
        return self.data_dir / "index"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()


def write_config_value(key: str, value: Any) -> Path:
    """Set one key in the TOML configuration file and return the file's path."""
    if key not in Settings.model_fields:
        raise KeyError(f"unknown setting {key!r}")
    path = config_file_path()
    assert path is not None
    data: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{name} = {_toml_value(item)}" for name, item in sorted(data.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    get_settings.cache_clear()
    return path


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'

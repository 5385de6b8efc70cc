"""hwgen.evaluate on the real model: cached QModel build and a short accuracy run."""

from __future__ import annotations

import json
from pathlib import Path

from hwgen.evaluate import build_qmodel, evaluate, qmodel_dir
from hwgen.quant.artifact import MANIFEST, seal

# The trained weights (models/weights/) and MNIST (data/mnist/) are committed: if either is
# missing these tests fail (DatasetError / missing weight file) instead of skipping.
NAME = "mnist_cnn"


def test_build_qmodel_caches_and_invalidates(tmp_path: Path) -> None:
    qm = build_qmodel(NAME, build_dir=tmp_path)
    man = qmodel_dir(NAME, tmp_path) / MANIFEST
    stamp = man.stat().st_mtime_ns
    again = build_qmodel(NAME, build_dir=tmp_path)  # cache hit: manifest untouched
    assert man.stat().st_mtime_ns == stamp
    assert [lay.name for lay in again.layers] == [lay.name for lay in qm.layers]
    # a different key (e.g. another float graph), even in a validly sealed manifest, rebuilds
    m = json.loads(man.read_text())
    m["meta"]["cache_key"]["graph_sha256"] = "0" * 64
    man.write_text(json.dumps(seal(m)))
    build_qmodel(NAME, build_dir=tmp_path)
    assert json.loads(man.read_text())["meta"]["cache_key"]["graph_sha256"] != "0" * 64
    # an edited clamp is caught by the manifest's seal and rebuilt: the cache never lies
    m = json.loads(man.read_text())
    m["layers"][0]["params"]["act_max"] = 100
    man.write_text(json.dumps(m))
    back = build_qmodel(NAME, build_dir=tmp_path)
    assert back.layers[0].act_max == 127


def test_evaluate_short(tmp_path: Path) -> None:
    res = evaluate(NAME, n=300, progress=False, build_dir=tmp_path)
    assert res["n"] == 300
    assert res["float_acc"] > 95 and res["int8_acc"] > 95
    assert res["agreement"] >= 98
    assert res["ir_max_abs_diff"] < 1e-3

"""The gateway serves a sliced model's keys slice by slice (one key per slice circuit)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

from oracle.circuits.manifest import Manifest
from oracle.gateway.app import create_app
from oracle.gateway.config import GatewaySettings
from oracle.gateway.context import GatewayContext
from oracle.gateway.server import GatewayServer
from tests.test_sliced import _compiled


def test_vk_of_a_sliced_model_is_served_per_slice(tmp_path: Path) -> None:
    folder = _compiled("sliced-mlp-k2", [0, 2, 4])
    m = Manifest.load(folder)
    assert m.slices
    models = tmp_path / "models"
    models.mkdir()
    (models / "sliced").symlink_to(folder, target_is_directory=True)
    ctx = GatewayContext.open(GatewaySettings(database_url=f"sqlite:///{tmp_path / 'g.db'}", models_dir=models))
    try:
        with GatewayServer(create_app(ctx)) as server:
            base = f"{server.url}/api/v1/models/{m.circuit_id}/vk"
            whole = httpx.get(base)
            assert whole.status_code == 400
            assert f"sliced into {len(m.slices)}" in whole.json()["error"]["message"]
            for j, sl in enumerate(m.slices):
                r = httpx.get(base, params={"slice": j})
                assert r.status_code == 200
                assert "0x" + hashlib.sha256(r.content).hexdigest() == sl["circuit_id"]
                assert json.loads(r.content)["protocol"] == "groth16"
            missing = httpx.get(base, params={"slice": len(m.slices)})
            assert missing.status_code == 404
    finally:
        ctx.close()

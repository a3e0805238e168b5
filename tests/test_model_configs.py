"""Configs are validated and resolved in one place (their ``__post_init__``) and never mutated by the model that
receives them; TrainConfig and ModelConfig read dicts by the same rule (an unknown key is a one-line error)."""
import copy

import pytest

import dgm
from dgm.errors import DgmError
from dgm.models import MODELS
from dgm.training import TrainConfig
from dgm.training import config as train_config

DATA = dict(channels=1, height=8, width=8, levels=2, num_classes=10)


def _opts(name):
    if name == "vq-vae-prior":
        return {"vq_config": dgm.MODELS.get("vq-vae").Config.from_dict({**DATA, "hidden": 8}).to_dict(), "hidden": 8}
    return {"hidden": 8} if "hidden" in {f for f in MODELS.get(name).Config.__dataclass_fields__} else {}


@pytest.mark.parametrize("name", sorted(MODELS.names()))
def test_building_a_model_leaves_its_config_unchanged(name):
    data = DATA if "audio" not in MODELS.get(name).data_kinds else {**DATA, "data_kind": "audio", "height": 1,
                                                                       "width": 64, "levels": 256}
    cfg = MODELS.get(name).Config.from_dict({**data, **_opts(name)})
    before = copy.deepcopy(cfg.to_dict())
    model = MODELS.get(name)(cfg)
    assert model.config is cfg and cfg.to_dict() == before


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn", "independent"])
def test_unconditional_autoregressive_configs_resolve_their_labels(name):
    cfg = MODELS.get(name).Config.from_dict(DATA)
    assert cfg.num_classes == 0  # labels ignored: resolved by the config, before any model sees it
    if name != "independent":
        assert MODELS.get(name).Config.from_dict({**DATA, "conditional": True}).num_classes == 10


@pytest.mark.parametrize("bad,match", [({"hidden": 0, "channels": 3}, "--hidden"), ({"layers": 0}, "--layers"),
                                       ({"kernel": 4}, "--kernel"), ({"conditional": True, "num_classes": 0},
                                                                      "--conditional")])
def test_pixelcnn_options_are_checked_by_the_config(bad, match):
    for name in ("pixelcnn", "gated-pixelcnn"):
        with pytest.raises(DgmError, match=match):
            MODELS.get(name).Config.from_dict({**DATA, **bad})


def test_train_config_rejects_unknown_keys_like_model_config():
    d = TrainConfig(steps=3).to_dict()
    assert TrainConfig.from_dict(d) == TrainConfig(steps=3)
    with pytest.raises(DgmError, match="no option.*bogus, lr_typo"):
        TrainConfig.from_dict({**d, "lr_typo": 1.0, "bogus": 2})
    with pytest.raises(DgmError, match="no option.*bogus"):
        MODELS.get("pixelcnn").Config.from_dict({**DATA, "bogus": 1})


def test_train_config_drops_legacy_keys(monkeypatch):
    monkeypatch.setattr(train_config, "LEGACY_KEYS", frozenset({"old_flag"}))
    assert TrainConfig.from_dict({"steps": 3, "old_flag": True}) == TrainConfig(steps=3)

"""Issue 31: GANConfig composes per-part options, and the runs written before (flat model_config, 54 fields) still
load, sample, resume and rebuild bit for bit.

tests/data/old-gan-runs/ holds tiny runs trained with the code of commit 8f51103 (make_references.py there says how):
config.json and one checkpoint each, and references.pt with, per run, the samples drawn with a fixed generator, the
state_dict's sha256, and both again after resuming to 5 steps.
"""
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import dgm
from dgm.cli import _build_parser, _collect, main
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.models.gan import GANConfig

OLD = Path(__file__).parent / "data" / "old-gan-runs"
sys.path.insert(0, str(OLD))
from make_references import RUNS, draw, state_sha256  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _recorded_threads():
    """The references were drawn and trained on 2 threads (the default on the 2-core machine that recorded them); the
    last bits of a CPU result depend on the thread count, so compare at that count whatever ran before."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)

REFS = torch.load(OLD / "references.pt", weights_only=True)
# GANConfig's own fields before issue 31 (ModelConfig's six data fields not counted)
OLD_FIELDS = (
    "objective arch latent_dim hidden layers d_norm spectral_norm n_critic lr_g lr_d ema_decay ema_start gp_weight "
    "dragan_c clip_value smooth_alpha smooth_beta margin pt_weight gamma lambda_k divergence unroll_steps "
    "instance_noise noise_decay_steps pack minibatch_disc minibatch_disc_dim mbstd mbstd_group update_order gdpp "
    "protocol r1 r1_every mapping_layers const_input noise modulation style_mix_prob truncation_cutoff d_residual "
    "conditional cond ac_weight phase_images growing eqlr pixelnorm drift attn_res ortho_reg skip_z shared_embed"
).split()


def _old_config(name):
    return json.loads((OLD / name / "config.json").read_text())


def test_the_recorded_runs_are_flat_and_cover_every_part():
    assert len(OLD_FIELDS) == 54 and set(REFS) == set(RUNS)
    used = set()
    for name in RUNS:
        cfg = _old_config(name)["model_config"]
        assert set(OLD_FIELDS) <= set(cfg) and "regularisers" not in cfg, name
        used.update(dgm.models.MODELS.get(_old_config(name)["model"]).Config.from_dict(cfg).regularisers)
    assert used == {"r1", "pack", "minibatch-disc", "mbstd", "ema", "conditional", "unroll", "instance-noise", "gdpp",
                    "ortho"}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_old_run_and_its_checkpoint_file_load_and_sample_bit_for_bit(name, tmp_path):
    ref = REFS[name]
    m = dgm.load(OLD / name)
    got = draw(m)
    assert torch.equal(got["samples"], ref["samples"])
    assert ("raw" in got) == ("raw" in ref) and ("raw" not in ref or torch.equal(got["raw"], ref["raw"]))
    assert state_sha256(m) == ref["sha256"]
    alone = tmp_path / "alone.pt"  # the checkpoint file without its run folder: it describes itself (flat config)
    shutil.copy(next((OLD / name / "checkpoints").glob("*.pt")), alone)
    assert torch.equal(draw(dgm.load(alone))["samples"], ref["samples"])


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_old_config_reads_back_as_it_was_written(name):
    """The flat view of the composed config is the old flat model_config, value for value (plus the options added
    since, issue 38's, at their defaults), and the composed form (what config.json holds now) rebuilds the same
    config."""
    from dgm.models.gan import option_defaults

    old = _old_config(name)["model_config"]
    cls = dgm.models.MODELS.get(_old_config(name)["model"]).Config
    c = cls.from_dict(old)
    flat = c.flat()
    assert {k: flat[k] for k in old} == old
    assert {k: flat[k] for k in set(flat) - set(old)} == {k: option_defaults()[k] for k in set(flat) - set(old)}
    assert set(flat) - set(old) == {"replay", "replay_share", "flip_labels", "g_layer_noise", "g_noise_decay_steps",
                                    "g_noise_constant", "d_batches", "upsample", "downsample", "g_activation"}
    assert all(getattr(c, k) == v for k, v in old.items())
    assert cls.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_old_run_resumes_bit_for_bit_and_its_new_config_rebuilds_it(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(OLD / name, run)
    # --threads 2: the recorded count, whatever the fair share of a busy machine would be
    assert main(["train", RUNS[name][0], "--out", str(run), "--resume", "--steps", "5", "--no-progress",
                 "--threads", "2"]) == 0
    m = dgm.load(run)
    assert state_sha256(m) == REFS[name]["resumed_sha256"]
    assert torch.equal(draw(m)["samples"], REFS[name]["resumed"])
    cfg = json.loads((run / "config.json").read_text())
    mc = cfg["model_config"]  # written again by the resume: the composed form
    assert {"objective_options", "arch_options", "regularisers"} <= set(mc) and "gp_weight" not in mc
    rebuilt = build_model(cfg["model"], mc)
    rebuilt.load_state_dict(m.state_dict())
    assert state_sha256(rebuilt) == REFS[name]["resumed_sha256"]
    assert rebuilt.config == m.config


def test_a_fresh_run_stores_the_composed_parts_and_round_trips(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "ring8", "--hidden", "4", "--layers", "1", "--steps", "2", "--batch-size",
                 "16", "--n-samples", "0", "--no-progress", "--objective", "wgan-gp", "--gp-weight", "3",
                 "--ema-decay", "0.5", "--pack", "2", "--mbstd", "--out", str(out)]) == 0
    mc = json.loads((out / "config.json").read_text())["model_config"]
    assert mc["objective"] == "wgan-gp" and mc["objective_options"] == {"gp_weight": 3.0, "drift": 0.0}
    assert mc["arch"] == "mlp" and mc["arch_options"] == {}
    assert mc["regularisers"] == {"ema": {"ema_decay": 0.5, "ema_start": 0}, "mbstd": {"mbstd": True, "mbstd_group": 4},
                                  "pack": {"pack": 2}}
    assert not set(mc) & (set(OLD_FIELDS) - set(GANConfig.__dataclass_fields__))  # no flat part option on top
    state = torch.load(next((out / "checkpoints").glob("*.pt")), weights_only=True)
    assert state["model_config"] == mc  # each checkpoint file stores the same composed config
    m = dgm.load(out)
    assert GANConfig.from_dict(mc) == m.config and m.config.to_dict() == mc
    assert (m.config.gp_weight, m.config.ema_decay, m.config.pack, m.config.r1) == (3.0, 0.5, 2, 0.0)  # flat view
    with pytest.raises(AttributeError, match="read-only"):
        m.config.gp_weight = 1.0


def test_a_composed_config_with_a_part_left_out_does_not_take_the_architectures_default():
    """A composed config lists every regulariser its run uses: StyleGAN's R1 gamma 10 fills only flat options."""
    assert GANConfig(arch="stylegan").regularisers["r1"].r1 == 10.0
    c = GANConfig(arch="stylegan", regularisers={})
    assert c.regularisers == {} and c.r1 == 0.0 and GANConfig.from_dict(c.to_dict()) == c
    assert GANConfig(arch="stylegan", r1=0).regularisers == {}  # --r1 0 given: kept


@pytest.mark.parametrize("edit,needle", [
    (lambda mc: mc.update(ema_decay="x"), "'ema_decay' has the wrong type"),
    (lambda mc: mc.update(pack=True), "'pack' has the wrong type"),
    (lambda mc: mc.update(no_such_option=1), "no option(s) no_such_option"),
])
def test_a_broken_flat_config_is_refused_in_one_line(edit, needle):
    mc = dict(_old_config("wgan-gp-ema-ring8")["model_config"])
    edit(mc)
    with pytest.raises(DgmError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        GANConfig.from_dict(mc)


@pytest.mark.parametrize("edit,needle", [
    (lambda mc: mc["regularisers"]["ema"].update(ema_decay="x"), "'ema_decay' has the wrong type"),
    (lambda mc: mc["regularisers"].update(emaa={}), "unknown GAN regulariser 'emaa'; did you mean 'ema'"),
    (lambda mc: mc["objective_options"].update(margin=1.0), "has no option(s) margin"),
    (lambda mc: mc.update(arch_options=[1]), "must be a mapping"),
])
def test_a_broken_composed_config_is_refused_in_one_line(edit, needle):
    mc = GANConfig.from_dict(_old_config("wgan-gp-ema-ring8")["model_config"]).to_dict()
    edit(mc)
    with pytest.raises(DgmError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        GANConfig.from_dict(mc)


def test_every_flag_of_the_old_config_is_still_accepted():
    old = _old_config("stylegan-digits")["model_config"]
    for name in OLD_FIELDS:
        value = old[name]
        if value is None:
            value = 0.5  # lr_g, lr_d
        flag = "--" + name.replace("_", "-")
        argv = ["train", "gan", flag if value is True else "--no-" + flag[2:]] if isinstance(value, bool) else \
            ["train", "gan", flag, str(value)]
        got = _collect(_build_parser(argv).parse_args(argv), GANConfig)
        assert set(got) == {name} and got[name] == value, name


def _help(capsys, *args):
    with pytest.raises(SystemExit):
        main(["train", "gan", *args, "--help"])
    return capsys.readouterr().out


def test_help_shows_the_selected_parts_options_and_lists_the_others(capsys):
    text = _help(capsys, "--arch", "stylegan")
    assert "--mapping-layers" in text and "--ema-decay" in text and "--r1-every" in text and "--hidden" in text
    shown = text.split("The options of the parts not selected here")[0]
    assert "--phase-images" not in shown and "--attn-res" not in shown and "--gp-weight" not in shown
    text = _help(capsys, "--objective", "wgan-gp")
    shown, rest = text.split("The options of the parts not selected here")
    assert "--gp-weight" in shown and "--drift" in shown and "--margin" not in shown and "--mapping-layers" not in shown
    assert "--objective ebgan: --margin --pt-weight" in " ".join(rest.split())
    text = " ".join(_help(capsys).split())  # no --arch / --objective: the defaults' parts, every regulariser
    assert "--arch stylegan: --mapping-layers" in text and "--objective wgan-gp: --gp-weight --drift" in text
    assert "regulariser ema" in text and "--gp-weight GP_WEIGHT" not in text


@pytest.mark.parametrize("flags,needle", [
    (["--objective", "hinge", "--gp-weight", "5"], "--gp-weight: not used by objective hinge"),
    (["--mapping-layers", "2"], "--mapping-layers: an option of --arch stylegan, not used by --arch auto"),
    (["--arch", "sagan", "--skip-z"], "--skip-z: an option of --arch biggan, not used by --arch sagan"),
    (["--mbstd-group", "2"], "--mbstd-group: an option of regulariser mbstd, which is off; give --mbstd too"),
    (["--ema-start", "3"], "--ema-start: an option of regulariser ema, which is off; give --ema-decay too"),
    (["--noise-decay-steps", "3"], "an option of regulariser instance-noise, which is off; give --instance-noise"),
    (["--r1-every", "2"], "--r1-every: an option of regulariser r1, which is off; give --r1 too"),
])
def test_an_option_of_a_part_the_run_does_not_use_is_refused_naming_the_part(flags, needle, capsys, tmp_path):
    code = main(["train", "gan", "--data", "ring8", "--steps", "1", "--out", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "r").exists()


def test_a_regulariser_switched_on_by_the_architecture_takes_its_options(tmp_path, capsys):
    """--r1-every with --arch stylegan: R1 is on by the architecture's default (gamma 10), so the option is read."""
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "digits", "--arch", "stylegan", "--hidden", "1", "--latent-dim", "2",
                 "--mapping-layers", "1", "--r1-every", "2", "--steps", "1", "--batch-size", "8", "--n-samples", "0",
                 "--no-progress", "--out", str(out)]) == 0, capsys.readouterr().err
    mc = json.loads((out / "config.json").read_text())["model_config"]
    assert mc["regularisers"]["r1"] == {"r1": 10.0, "r1_every": 2} and mc["arch_options"]["mapping_layers"] == 1

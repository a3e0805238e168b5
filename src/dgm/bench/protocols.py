"""The two published toy-mixture protocols as presets: ``--protocol veegan`` (setting A) and ``--protocol pacgan``
(setting B), for ``dgm bench modes`` and ``dgm train gan --data ring8|grid25``.

Every constant is here with its source. A preset fills defaults: a model or training option given explicitly
(a flag, or the bench's own options) replaces the preset's value, and the run's config.json records the values
used (and ``protocol``), so nothing is hidden. Only the data is refused: a preset is defined on ring8 / grid25.

Setting A -- VEEGAN (Srivastava et al. 2017) Table 1, reprinted with WGAN-GP and GDPP rows in GDPP (Elfeki et al.
2019) Table 1; networks and optimiser read from GDPP's code, github.com/M-Elfeki/GDPP ``gdppgan_Synthetic.py``.
Setting B -- PacGAN (Lin et al. 2018) Table 1; read from github.com/fjxmlzn/PacGAN
``synthetic_data_experiments/2D{Ring,Grid}_GAN&PacGAN/{config.py,pacgan_task.py}``.

Both papers' code takes D's and G's gradients from one evaluation of the graph and applies both steps (GDPP:
``sess.run([g_train_op, d_train_op])``; PacGAN: ALI's ``ali_algorithm``), so both presets set
``update_order="simultaneous"`` (dgm's default is alternating: G against the updated D).
Known differences from the papers' code (both settings): dgm trains on its fixed 100,000-point training
split (GDPP draws fresh points every step; PacGAN draws 100,000 fixed packs of m points); and dgm's ring has 8
distinct modes at k 2 pi / 8 (GDPP's ``sample_ring`` uses linspace(0, 2 pi, 8): 7 distinct modes). Under
packing PacGAN runs G once per pack slot (``bricks.py``), so its BatchNorm statistics are per slot of 100 samples;
dgm runs G once on all m x 100.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..errors import DgmError


@dataclass(frozen=True)
class Protocol:
    name: str
    summary: str
    model: Dict[str, Any]                    # GAN options by name, flat (GANConfig composes the parts from them)
    train: Dict[str, Any]                    # TrainConfig fields (batch_size: per pack, see ``batch_size``)
    per_objective: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # objective -> GAN options (flat)
    steps: int = 0                           # full length in discriminator updates
    steps_per_epoch: int = 0                 # >0: the protocol counts epochs of this many updates
    packs_per_batch: bool = False            # batch_size counts packs (PacGAN): the batch is pack x batch_size
    published: Tuple = ()                    # (name, data, modes, hq, reverse_kl, their error bars or None)
    source: str = ""

    def batch_size(self, pack: int) -> int:
        b = self.train["batch_size"]
        return b * pack if self.packs_per_batch else b

    @property
    def epochs(self) -> Optional[float]:
        return self.steps / self.steps_per_epoch if self.steps_per_epoch else None


VEEGAN = Protocol(
    "veegan", "setting A: VEEGAN/GDPP tanh MLPs, z in R^256, batch 512, 25k iterations, Adam lr_D 1e-4 / lr_G 1e-3",
    model={
        "arch": "veegan",      # gdppgan_Synthetic.py generator()/discriminator(): FC128 tanh MLPs
        "hidden": 128,         # n_hidden=128
        "layers": 2,           # n_layer=2 (G); D: FC128 tanh -> FC128 -> tanh -> FC1
        "latent_dim": 256,     # params z_dim=256
        "lr_d": 1e-4,          # params disc_learning_rate=1e-4
        "lr_g": 1e-3,          # params gen_learning_rate=1e-3
        "update_order": "simultaneous",  # sess.run([g_train_op, d_train_op]): both gradients from one evaluation
    },
    train={
        "batch_size": 512,     # params batch_size=512
        "beta1": 0.5,          # params beta1=0.5
        "beta2": 0.999,        # tf.train.AdamOptimizer default beta2
        # Adam epsilon 1e-8 (params epsilon=1e-8) is torch's default; not an option
    },
    per_objective={
        # Not in GDPP's code (it has no WGAN-GP script). lambda 0.1 is the WGAN-GP authors' own toy value
        # (github.com/igul222/improved_wgan_training gan_toy.py: LAMBDA = .1, "smaller lambda makes things faster
        # for toy tasks"; CRITIC_ITERS = 5); the paper's lambda 10 kills these tanh nets (1 ring mode / 0.1 % HQ
        # in issue 15's trial, 5 critic steps, 5,000 G steps; lambda 0.1: 8 modes / 47.7 % HQ). n_critic 5 is
        # also the paper's (Gulrajani et al. 2017, Alg. 1).
        "wgan-gp": {"gp_weight": 0.1, "n_critic": 5},
    },
    steps=25_000,              # params max_iter=25000 (VEEGAN's paper: 100,000)
    packs_per_batch=True,      # not in setting A (no packing there): PacGAN's convention, 512 packs of m samples
    published=(                # reference-results.md, setting A (5 runs, no error bars; no reverse KL reported)
        ("GAN", "ring8", 1.0, 0.993, None, None), ("ALI", "ring8", 2.8, 0.0013, None, None),
        ("Unrolled GAN", "ring8", 7.6, 0.356, None, None), ("VEEGAN", "ring8", 8.0, 0.529, None, None),
        ("WGAN-GP", "ring8", 6.8, 0.596, None, None), ("GDPP-GAN", "ring8", 8.0, 0.717, None, None),
        ("GAN", "grid25", 3.3, 0.005, None, None), ("ALI", "grid25", 15.8, 0.016, None, None),
        ("Unrolled GAN", "grid25", 23.6, 0.16, None, None), ("VEEGAN", "grid25", 24.6, 0.40, None, None),
        ("WGAN-GP", "grid25", 24.2, 0.287, None, None), ("GDPP-GAN", "grid25", 24.8, 0.685, None, None),
    ),
    source="VEEGAN Table 1 / GDPP Table 1; github.com/M-Elfeki/GDPP gdppgan_Synthetic.py",
)

PACGAN = Protocol(
    "pacgan", "setting B: PacGAN's BN-ReLU 4x400 G and maxout D, z in R^2, 100 packs per batch, Adam 1e-4 "
    "beta1 0.8, 400 epochs of 1,000 updates",
    model={
        "arch": "pacgan",      # pacgan_task.py create_model_brick(): BN-ReLU MLP G, LinearMaxout D
        "hidden": 400,         # config.py gen_hidden_size=400 (D: disc_hidden_size=200 = hidden / 2)
        "layers": 3,           # 3 LinearMaxout layers in D (G: 4 hidden layers = layers + 1)
        "latent_dim": 2,       # config.py num_zdim=2, num_zmode=1, z_mode_std=1.0: z ~ N(0, I_2)
        "lr_d": 1e-4,          # config.py learning_rate=1e-4 (one Adam step rule for D and G)
        "lr_g": 1e-4,
        "objective": "non-saturating",  # PacGAN bricks: the ALI/GAN losses, G maximises log D(G(z))
        "update_order": "simultaneous",  # ali.algorithms.ali_algorithm: one GradientDescent over both losses' grads
    },
    train={
        "batch_size": 100,     # config.py batch_size=100: packs per batch (pacgan_task.py: one z per pack slot)
        "beta1": 0.8,          # config.py beta1=0.8 (Blocks' Adam, modern convention: decay rate of the mean)
        "beta2": 0.999,        # Blocks' Adam default beta2=0.999
    },
    steps=400_000,             # config.py num_epoch=400 x (100,000 packs / 100 per batch)
    steps_per_epoch=1000,      # streams.py: ShuffledScheme(num_examples=100000, batch_size=100)
    packs_per_batch=True,
    published=(                # reference-results.md, setting B (10 trials, mean +- standard error)
        ("GAN", "ring8", (6.3, 0.5), (0.982, 0.002), (0.45, 0.09), 1),
        ("ALI", "ring8", (6.6, 0.3), (0.976, 0.004), (0.36, 0.04), 1),
        ("PacGAN2", "ring8", (7.9, 0.1), (0.956, 0.020), (0.07, 0.03), 2),
        ("PacGAN3", "ring8", (7.8, 0.1), (0.977, 0.003), (0.10, 0.02), 3),
        ("PacGAN4", "ring8", (7.8, 0.1), (0.959, 0.014), (0.07, 0.02), 4),
        ("GAN", "grid25", (17.3, 0.8), (0.948, 0.007), (0.70, 0.07), 1),
        ("ALI", "grid25", (24.1, 0.4), (0.957, 0.006), (0.14, 0.03), 1),
        ("PacGAN2", "grid25", (23.8, 0.7), (0.913, 0.008), (0.13, 0.04), 2),
        ("PacGAN3", "grid25", (24.6, 0.4), (0.942, 0.004), (0.06, 0.02), 3),
        ("PacGAN4", "grid25", (24.8, 0.2), (0.936, 0.006), (0.04, 0.01), 4),
    ),
    source="PacGAN Table 1; github.com/fjxmlzn/PacGAN synthetic_data_experiments (config.py, pacgan_task.py)",
)

PROTOCOLS: Dict[str, Protocol] = {p.name: p for p in (VEEGAN, PACGAN)}
TOY_DATA = ("ring8", "grid25")


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise DgmError(f"unknown --protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def apply(name: str, data: Optional[str], model_opts: Dict[str, Any], train_opts: Dict[str, Any]
          ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(model options, training options) of the preset ``name`` with the given ones on top (given values win).

    The batch size follows the pack size where the protocol counts packs (PacGAN: 100 x m samples); the length is
    the protocol's unless --steps or --epochs is given (epochs count the protocol's updates per epoch)."""
    p = get(name)
    if data is not None and data not in TOY_DATA:
        raise DgmError(f"--protocol {name} is defined on the toy mixtures ({', '.join(TOY_DATA)}), not {data!r}")
    objective = model_opts.get("objective", p.model.get("objective", "non-saturating"))
    model = {**p.model, **p.per_objective.get(objective, {}), "protocol": name, **model_opts}
    model["objective"] = objective
    pack = int(model.get("pack", 1))
    train = {**p.train, "batch_size": p.batch_size(pack)}
    train_opts = dict(train_opts)
    if p.steps_per_epoch and train_opts.get("epochs") is not None:  # the protocol's epochs, not passes over dgm's
        train_opts["steps"] = max(1, round(train_opts.pop("epochs") * p.steps_per_epoch))  # 100k-point split
    train.update(train_opts)
    if train.get("steps") is None and train.get("epochs") is None:
        train["steps"] = p.steps
    return model, train

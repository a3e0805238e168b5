"""Losses as pure functions of tensors: GAN objectives, discriminator penalties, the ELBO's KL and the IWAE bound.

The likelihood objective of autoregressive models is ``-model.log_prob(x)``; see training.steps.
"""
from .conditional import acgan_d_class_loss, acgan_g_class_loss, class_loss
from .elbo import gaussian_kl, iwae_log_prob, log_mean_exp_chunked, reparameterize
from .gan import (F_DIVERGENCES, OBJECTIVES, FDivergence, Objective, began_update, f_divergence, fgan_bound,
                  pulling_away)
from .orthogonal import orthogonal_regularization, orthogonal_regularization_of
from .penalties import (PENALTY_POINTS, Penalty, clip_weights, gradient_penalty, instance_noise_std, interpolates,
                        perturbed, r1)
from .tc import permute_dims, tc_accuracy, tc_discriminator_loss, tc_estimate

__all__ = ["OBJECTIVES", "Objective", "F_DIVERGENCES", "FDivergence", "f_divergence", "fgan_bound", "began_update",
           "pulling_away", "gradient_penalty", "interpolates", "perturbed", "clip_weights", "instance_noise_std",
           "gaussian_kl", "reparameterize", "iwae_log_prob", "log_mean_exp_chunked", "Penalty", "PENALTY_POINTS",
           "r1", "orthogonal_regularization", "orthogonal_regularization_of", "class_loss", "acgan_d_class_loss",
           "acgan_g_class_loss", "permute_dims", "tc_estimate", "tc_discriminator_loss", "tc_accuracy"]

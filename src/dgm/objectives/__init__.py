"""Losses as pure functions of tensors (GAN losses, penalties, ELBO, IWAE) -- later issues add them.

The likelihood objective of autoregressive models is ``-model.log_prob(x)``; see training.steps.
"""

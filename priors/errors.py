"""The error type of invalid input to a prior: a bad batch, configuration, model card or directory."""

__all__ = ["PriorError"]


class PriorError(ValueError):
    """Invalid input to :mod:`priors` (:class:`priors.PriorLoadError` is the one for prior directories).

    A ``ValueError``, so ``except ValueError`` catches it too::

        import torch
        from priors import GaussianPrior, PriorError

        try:
            GaussianPrior(torch.zeros(2), std=-1.0)
        except PriorError as e:
            print(e)
    """

"""RetinaNet's prior-probability bias for a classification head (Lin et al. 2017)."""

from __future__ import annotations

from jinit._core._checks import (
    check_real,
)
from jinit.initializers._basic import normal, zeros
from jinit.initializers._conventions import bias_prior
from jinit.recipes._recipe import (
    RECIPES_PREFIX,
    Patterns,
    Recipe,
    call_repr,
    check_patterns,
    defining_role,
    rules_for,
)
from jinit.trees._rules import Rule

# ---------------------------------------------------------------------------------------------
# RetinaNet
# ---------------------------------------------------------------------------------------------


def retinanet(
    prior: float = 0.01,
    *,
    cls_bias: Patterns = "*cls_score/bias",
    stddev: float = 0.01,
) -> Recipe:
    r"""Rules for a RetinaNet head (Lin et al. 2017): prior bias on the classification logits.

    .. math::
        b_\mathrm{cls} = -\log\frac{1 - \pi}{\pi}\ (\pi = 0.01:\ -4.59512), \qquad
        W \sim \mathcal N(0, 0.01^2), \qquad b = 0,

    so every anchor starts by predicting foreground with probability :math:`\pi` and the easy
    negatives do not swamp the focal loss in the first iterations. Kernels and the other biases
    follow detectron2's ``RetinaNetHead`` (``cls_subnet``, ``bbox_subnet``, ``cls_score``,
    ``bbox_pred``: N(0, 0.01²), bias 0); the default names are detectron2's. Apply to the head's
    parameters (the backbone has its own init).

    Args:
      prior: π, the foreground prior (strictly between 0 and 1).
      cls_bias: glob(s) of the classification logits' bias.
      stddev: the kernels' std (0.01; finite, > 0).

    Returns:
      A :class:`Recipe`: classification bias → :func:`jinit.bias_prior` (π), ``*kernel`` →
      N(0, 0.01²), ``*bias`` → 0 (``reinit`` raises if ``cls_bias`` matches nothing).

    Examples:
      >>> import jinit
      >>> jinit.recipes.retinanet()[0]
      ('*cls_score/bias', jinit.bias_prior(p=0.01))

    References:
      Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017;
      facebookresearch/detectron2 ``modeling/meta_arch/retinanet.py``.
    """
    api = RECIPES_PREFIX + "retinanet"
    prior = check_real(api, "prior", prior)
    if not 0 < prior < 1:
        raise ValueError(
            f"`{api}` needs the foreground prior `prior` strictly between 0 and 1 (its logit "
            f"-log((1 - prior) / prior) is infinite at 0 and 1); got {prior!r}. RetinaNet uses "
            f"prior=0.01."
        )
    stddev = check_real(api, "stddev", stddev, positive=True)
    cls_bias = check_patterns(api, "cls_bias", cls_bias)
    rules = [
        *rules_for(cls_bias, bias_prior(prior)),
        Rule("*kernel", normal(stddev), fallback=True),
        Rule("*bias", zeros, fallback=True),
    ]
    role = f"classification bias (prior {prior:g})"
    needs = defining_role(
        api, call_repr("retinanet", prior=prior), role, cls_bias, "`cls_bias='*<cls>/bias'`"
    )
    return Recipe(rules, needs)

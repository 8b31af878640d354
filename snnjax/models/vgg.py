"""Deprecated alias of :mod:`snnjax.methods.hybrid.vgg` (moved in 0.2; this path goes in the next release)."""

from snnjax._deprecated import redirect

redirect("snnjax.models.vgg")

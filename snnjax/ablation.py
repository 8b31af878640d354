"""Deprecated alias of :mod:`snnjax.methods.idsnn.ablation` (moved in 0.2; this path goes in the next release).

``python -m snnjax.ablation ...`` still runs the ablation (same flags); prefer
``python -m snnjax.methods.idsnn.ablation ...``.
"""

if __name__ == "__main__":
    import warnings

    warnings.warn(
        "snnjax.ablation moved to snnjax.methods.idsnn.ablation; run "
        "`python -m snnjax.methods.idsnn.ablation` (the old path goes in the next release)",
        DeprecationWarning,
        stacklevel=1,
    )
    from snnjax.methods.idsnn import ablation as _ablation

    _ablation.cli()
else:
    from snnjax._deprecated import redirect

    redirect("snnjax.ablation")

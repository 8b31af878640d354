"""NIR export refuses PSN models (NIR 1.0 has no node that mixes time steps) with a one-line reason."""

import jax
import jax.numpy as jnp
import pytest

pytest.importorskip("nir")

from snnjax import models  # noqa: E402
from snnjax.export import write_nir  # noqa: E402


@pytest.mark.parametrize("variant", ["full", "sliding"])
def test_psn_models_are_refused(tmp_path, variant):
    model = models.build_model(models.model_config(width=2, neuron="psn", psn_variant=variant), 5)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False))
    with pytest.raises(NotImplementedError, match=r"PSN neurons .* cannot be exported: NIR 1.0 has no node") as err:
        write_nir(str(tmp_path / "never.nir"), model, variables, (8, 8, 1))
    assert "\n" not in str(err.value) and not (tmp_path / "never.nir").exists()

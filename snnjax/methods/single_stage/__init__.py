"""Single-stage training (``config.pipeline="train"``): the ANN teacher (configs/teacher.py) or the
directly trained Spiking ResNet baseline (configs/baseline.py). No paper's method: one
``train_and_evaluate`` of the engine, then the run summary with its spike statistics.

- :mod:`~snnjax.methods.single_stage.pipeline`: ``run(config, workdir)``.
"""

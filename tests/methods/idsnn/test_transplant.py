"""Weight transplant: block maps, cyclic channel tiling, options, errors and the exact-copy check."""

import copy

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import models
from snnjax.methods.idsnn import transplant as tp

NUM_CLASSES = 3
IMAGE = (2, 8, 8, 3)


def build(name="resnet18", width=4, neuron="relu", time_steps=1, num_classes=NUM_CLASSES):
    cfg = models.model_config(name=name, neuron=neuron, time_steps=time_steps, width=width)
    return models.build_model(cfg, num_classes)


def numbered_variables(name="resnet18", width=4, neuron="relu", time_steps=1, num_classes=NUM_CLASSES, offset=0.0):
    """Variables of a real model layout (shapes from eval_shape, no compile) with unique numbers.

    Leaf number k (in tree order) holds ``offset + 1000 * k + arange(size)`` reshaped; params and
    batch_stats only (init's sown ``spike_stats`` dropped).
    """
    model = build(name, width, neuron, time_steps, num_classes)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(IMAGE), train=False))
    shapes = {k: shapes[k] for k in ("params", "batch_stats")}
    leaves, treedef = jax.tree.flatten(shapes)
    values = [
        (offset + 1000.0 * k + np.arange(np.prod(s.shape))).reshape(s.shape).astype(np.float32)
        for k, s in enumerate(leaves)
    ]
    return jax.tree.unflatten(treedef, values)


def leaf(tree, path):
    for key in path.split("/"):
        tree = tree[key]
    return np.asarray(tree)


def flat_paths(tree, prefix=""):
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += flat_paths(value, path + "/") if isinstance(value, dict) else [path]
    return out


# ---------------------------------------------------------------------------------------------- block map


@pytest.mark.parametrize(
    "d_t,d_s,expected",
    [
        (3, 2, (0, 1)),
        (4, 2, (0, 1)),
        (6, 2, (0, 1)),
        (1, 3, (0, 0, 0)),
        (2, 4, (0, 1, 1, 1)),
        (2, 2, (0, 1)),
    ],
)
def test_block_map_first(d_t, d_s, expected):
    assert tp.block_map(d_t, d_s, "first") == expected
    assert tp.block_map(d_t, d_s) == expected  # "first" is the default


@pytest.mark.parametrize(
    "d_t,d_s,expected",
    [
        (6, 2, (0, 5)),
        (4, 2, (0, 3)),
        (3, 2, (0, 2)),
        (6, 1, (0,)),
        (3, 3, (0, 1, 2)),
        (2, 3, (0, 1, 1)),  # 0.5 -> 1 (Python's round(0.5) would give 0)
        (6, 3, (0, 3, 5)),  # 2.5 -> 3 (round(2.5) would give 2)
        (4, 3, (0, 2, 3)),  # 1.5 -> 2
        (23, 6, (0, 4, 9, 13, 18, 22)),  # 0, 4.4, 8.8, 13.2, 17.6, 22
    ],
)
def test_block_map_uniform(d_t, d_s, expected):
    assert tp.block_map(d_t, d_s, "uniform") == expected


def test_block_map_errors():
    with pytest.raises(ValueError, match="unknown block rule 'last'"):
        tp.block_map(3, 2, "last")
    with pytest.raises(ValueError, match="teacher_blocks must be a positive integer, got 0"):
        tp.block_map(0, 2)
    with pytest.raises(ValueError, match="student_blocks must be a positive integer, got -1"):
        tp.block_map(2, -1)


def test_format_block_mapping():
    assert tp.format_block_mapping((3, 4, 6, 3), (2, 2, 2, 2), "first") == (
        "stage0: student [0,1] <- teacher [0,1]\n"
        "stage1: student [0,1] <- teacher [0,1]\n"
        "stage2: student [0,1] <- teacher [0,1]\n"
        "stage3: student [0,1] <- teacher [0,1]"
    )
    assert tp.format_block_mapping((3, 4, 6, 3), (2, 2, 2, 2), "uniform") == (
        "stage0: student [0,1] <- teacher [0,2]\n"
        "stage1: student [0,1] <- teacher [0,3]\n"
        "stage2: student [0,1] <- teacher [0,5]\n"
        "stage3: student [0,1] <- teacher [0,2]"
    )
    with pytest.raises(ValueError, match="teacher has 4 stages .* student has 3 stages"):
        tp.format_block_mapping((3, 4, 6, 3), (2, 2, 2))


# ---------------------------------------------------------------------------------------------- tiling


def test_loop_interpolate_hand_values():
    np.testing.assert_array_equal(tp.loop_interpolate(np.array([10.0, 20.0]), (5,), (0,)), [10, 20, 10, 20, 10])
    np.testing.assert_array_equal(tp.loop_interpolate(np.array([1.0, 2, 3, 4, 5]), (3,), (0,)), [1, 2, 3])
    # [in=2, out=3] -> [in=3, out=2]: tile rows, truncate columns.
    t = np.array([[0.0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(tp.loop_interpolate(t, (3, 2), (0, 1)), [[0, 1], [3, 4], [0, 1]])
    # only axis 0 is a channel axis; negative axes count from the end
    np.testing.assert_array_equal(tp.loop_interpolate(t, (4, 3), (-2,)), [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize(
    "t_shape,s_shape", [((3, 3, 2, 4), (3, 3, 3, 6)), ((3, 3, 5, 4), (3, 3, 2, 3)), ((1, 1, 4, 2), (1, 1, 4, 7))]
)
def test_loop_interpolate_kernel_formula(t_shape, s_shape):
    t = np.arange(np.prod(t_shape), dtype=np.float32).reshape(t_shape)
    out = np.asarray(tp.loop_interpolate(t, s_shape, (2, 3)))
    assert out.shape == s_shape
    for i in range(s_shape[2]):
        for o in range(s_shape[3]):
            np.testing.assert_array_equal(out[:, :, i, o], t[:, :, i % t_shape[2], o % t_shape[3]])


def test_loop_interpolate_errors():
    with pytest.raises(
        ValueError,
        match=r"teacher shape \(3, 3, 2, 4\) and student shape \(5, 5, 2, 4\) differ "
        r"on axis 0",
    ):
        tp.loop_interpolate(np.zeros((3, 3, 2, 4)), (5, 5, 2, 4), (2, 3))
    with pytest.raises(ValueError, match="different ranks"):
        tp.loop_interpolate(np.zeros((2, 4)), (1, 1, 2, 4), (2, 3))
    with pytest.raises(ValueError, match="channel axis 4 is out of range"):
        tp.loop_interpolate(np.zeros((1, 1, 2, 4)), (1, 1, 2, 4), (4,))


# ------------------------------------------------------------------------------ transplant on model layouts


def test_resnet34_to_resnet18_block_sources():
    teacher = numbered_variables("resnet34", width=4)
    student = numbered_variables("resnet18", width=4, offset=0.5)
    for rule, stage_sources in (
        ("first", ((0, 1), (0, 1), (0, 1), (0, 1))),
        ("uniform", ((0, 2), (0, 3), (0, 5), (0, 2))),
    ):
        out, report = tp.transplant(teacher, student, block_rule=rule)
        sources = dict(report.entries)
        for s, blocks in enumerate(stage_sources):
            for i, j in enumerate(blocks):
                for path in (f"params/stage{s}_block{i}/conv2/kernel", f"batch_stats/stage{s}_block{i}/bn1/var"):
                    t_path = path.replace(f"stage{s}_block{i}", f"stage{s}_block{j}")
                    np.testing.assert_array_equal(leaf(out, path), leaf(teacher, t_path))
                    assert sources[path] == f"{t_path} [copied]"


def test_tiled_channels_width2_to_width3():
    teacher = numbered_variables(width=2)
    student = numbered_variables(width=3, offset=0.5)
    teacher["batch_stats"]["stage0_block1"]["bn2"]["mean"] = np.array([5.0, 7.0], np.float32)
    teacher["batch_stats"]["stage0_block1"]["bn2"]["var"] = np.array([0.25, 4.0], np.float32)
    teacher["params"]["stage0_block1"]["bn2"]["scale"] = np.array([-1.0, 2.0], np.float32)
    out, report = tp.transplant(teacher, student)
    # BN vectors: [a, b] -> [a, b, a]; stage1 has 2*width channels: 4 -> 6.
    np.testing.assert_array_equal(leaf(out, "batch_stats/stage0_block1/bn2/mean"), [5.0, 7.0, 5.0])
    np.testing.assert_array_equal(leaf(out, "batch_stats/stage0_block1/bn2/var"), [0.25, 4.0, 0.25])
    np.testing.assert_array_equal(leaf(out, "params/stage0_block1/bn2/scale"), [-1.0, 2.0, -1.0])
    t_bias = leaf(teacher, "params/stage1_block0/bn1/bias")
    np.testing.assert_array_equal(leaf(out, "params/stage1_block0/bn1/bias"), t_bias[[0, 1, 2, 3, 0, 1]])
    # conv kernel [3, 3, 2, 4] -> [3, 3, 3, 6], element by element
    t = leaf(teacher, "params/stage1_block0/conv1/kernel")
    s = leaf(out, "params/stage1_block0/conv1/kernel")
    assert t.shape == (3, 3, 2, 4) and s.shape == (3, 3, 3, 6)
    for i in range(3):
        for o in range(6):
            np.testing.assert_array_equal(s[:, :, i, o], t[:, :, i % 2, o % 4])
    # stem: input channels match (3), output channels tiled 2 -> 3
    np.testing.assert_array_equal(
        leaf(out, "params/stem_conv/kernel"), leaf(teacher, "params/stem_conv/kernel")[..., [0, 1, 0]]
    )
    assert (
        dict(report.entries)["params/stage1_block0/conv1/kernel"]
        == "params/stage1_block0/conv1/kernel [tiled 2->3 in, 4->6 out]"
    )
    assert (
        dict(report.entries)["batch_stats/stage0_block1/bn2/mean"] == "batch_stats/stage0_block1/bn2/mean [tiled 2->3]"
    )


def test_truncated_channels_width4_to_width2():
    teacher = numbered_variables(width=4)
    student = numbered_variables(width=2, offset=0.5)
    out, report = tp.transplant(teacher, student)
    t = leaf(teacher, "params/stage2_block1/conv2/kernel")  # [3, 3, 16, 16]
    np.testing.assert_array_equal(leaf(out, "params/stage2_block1/conv2/kernel"), t[:, :, :8, :8])
    np.testing.assert_array_equal(
        leaf(out, "batch_stats/stage3_block0/bn2/mean"), leaf(teacher, "batch_stats/stage3_block0/bn2/mean")[:16]
    )
    assert (
        dict(report.entries)["params/stage2_block1/conv2/kernel"]
        == "params/stage2_block1/conv2/kernel [truncated 16->8 in, 16->8 out]"
    )


def test_shortcut_and_head_kept_by_default_and_transplanted_with_options():
    teacher = numbered_variables(width=2)
    student = numbered_variables(width=3, offset=0.5)
    kept_paths = [
        "params/stage1_block0/shortcut_conv/kernel",
        "params/stage1_block0/shortcut_bn/scale",
        "batch_stats/stage3_block0/shortcut_bn/mean",
        "params/head/kernel",
        "params/head/bias",
    ]
    out, report = tp.transplant(teacher, student)
    sources = dict(report.entries)
    for path in kept_paths:
        assert leaf(out, path).tobytes() == leaf(student, path).tobytes()
        assert sources[path].startswith("kept initialisation (include_")

    out, report = tp.transplant(teacher, student, include_shortcut=True, include_head=True)
    t = leaf(teacher, "params/stage1_block0/shortcut_conv/kernel")  # [1, 1, 2, 4]
    np.testing.assert_array_equal(
        leaf(out, "params/stage1_block0/shortcut_conv/kernel"), t[:, :, [0, 1, 0]][..., [0, 1, 2, 3, 0, 1]]
    )
    np.testing.assert_array_equal(
        leaf(out, "batch_stats/stage3_block0/shortcut_bn/mean"),
        leaf(teacher, "batch_stats/stage3_block0/shortcut_bn/mean")[np.arange(24) % 16],
    )
    head_t = leaf(teacher, "params/head/kernel")  # [16, 3]
    np.testing.assert_array_equal(leaf(out, "params/head/kernel"), head_t[np.arange(24) % 16])
    np.testing.assert_array_equal(leaf(out, "params/head/bias"), leaf(teacher, "params/head/bias"))
    assert dict(report.entries)["params/head/kernel"] == "params/head/kernel [tiled 16->24 in]"
    assert report.kept == 0


def test_include_stem_false_keeps_stem():
    teacher, student = numbered_variables(width=2), numbered_variables(width=2, offset=0.5)
    out, report = tp.transplant(teacher, student, include_stem=False)
    np.testing.assert_array_equal(leaf(out, "params/stem_conv/kernel"), leaf(student, "params/stem_conv/kernel"))
    np.testing.assert_array_equal(leaf(out, "batch_stats/stem_bn/var"), leaf(student, "batch_stats/stem_bn/var"))
    assert dict(report.entries)["params/stem_bn/scale"] == "kept initialisation (include_stem=False)"


def test_head_class_count_mismatch():
    teacher = numbered_variables(width=2, num_classes=5)
    student = numbered_variables(width=2, num_classes=3)
    tp.transplant(teacher, student)  # fine without the head
    with pytest.raises(
        ValueError,
        match=r"teacher has 5 classes \(params/head/kernel \(16, 5\)\) but student has 3 "
        r"\(params/head/kernel \(16, 3\)\).*include_head=False",
    ):
        tp.transplant(teacher, student, include_head=True)


# ------------------------------------------------------------------------------ errors (hand-made trees)


def tiny_tree(stages, stem_kernel=(3, 3), block_convs=("conv1", "conv2"), width=2, dtype=np.float32, value=1.0):
    """A hand-made ResNet-layout tree: ``stages`` blocks per stage, 3x3 convs, no shortcuts."""

    def arr(*shape):
        return np.full(shape, value, dtype)

    params = {
        "stem_conv": {"kernel": arr(*stem_kernel, 3, width)},
        "stem_bn": {"scale": arr(width), "bias": arr(width)},
    }
    stats = {"stem_bn": {"mean": arr(width), "var": arr(width)}}
    for s, n in enumerate(stages):
        for b in range(n):
            name = f"stage{s}_block{b}"
            params[name], stats[name] = {}, {}
            for k, conv in enumerate(block_convs, start=1):
                params[name][conv] = {"kernel": arr(3, 3, width, width)}
                params[name][f"bn{k}"] = {"scale": arr(width), "bias": arr(width)}
                stats[name][f"bn{k}"] = {"mean": arr(width), "var": arr(width)}
    return {"params": params, "batch_stats": stats}


def test_error_block_types_differ_resnet50_to_resnet18():
    teacher = numbered_variables("resnet50", width=2)
    student = numbered_variables("resnet18", width=2)
    with pytest.raises(
        ValueError,
        match=r"block types differ: teacher params/stage0_block0 is a Bottleneck "
        r"\(conv1, conv2, conv3\) but student params/stage0_block0 is a BasicBlock "
        r"\(conv1, conv2\)",
    ):
        tp.transplant(teacher, student)


def test_error_kernel_sizes_differ():
    teacher = tiny_tree((1, 1), stem_kernel=(7, 7))
    student = tiny_tree((1, 1), stem_kernel=(3, 3))
    with pytest.raises(
        ValueError,
        match=r"kernel sizes differ: teacher params/stem_conv/kernel \(7, 7, 3, 2\) -> "
        r"student params/stem_conv/kernel \(3, 3, 3, 2\)",
    ):
        tp.transplant(teacher, student)
    out, _ = tp.transplant(teacher, student, include_stem=False)  # the stem is the only mismatch
    assert leaf(out, "params/stage1_block0/conv1/kernel").shape == (3, 3, 2, 2)


def test_error_stage_counts_differ():
    with pytest.raises(
        ValueError,
        match=r"teacher has 4 stages \(blocks \(1, 2, 1, 1\)\) but student has 3 stages "
        r"\(blocks \(1, 1, 1\)\)",
    ):
        tp.transplant(tiny_tree((1, 2, 1, 1)), tiny_tree((1, 1, 1)))


def test_error_teacher_collection_missing():
    teacher, student = tiny_tree((1,)), tiny_tree((1,))
    with pytest.raises(
        ValueError, match="teacher variables lack batch_stats/stem_bn/mean, needed for student batch_stats/stem_bn/mean"
    ):
        tp.transplant({"params": teacher["params"]}, student)
    with pytest.raises(ValueError, match="unknown block_rule 'nearest'"):
        tp.transplant(teacher, student, block_rule="nearest")


def test_missing_teacher_module_keeps_initialisation_with_note():
    teacher, student = tiny_tree((2,), value=1.0), tiny_tree((2,), value=0.0)
    student["params"]["stage0_block1"]["shortcut_conv"] = {"kernel": np.full((1, 1, 2, 2), 9.0, np.float32)}
    out, report = tp.transplant(teacher, student, include_shortcut=True)
    np.testing.assert_array_equal(leaf(out, "params/stage0_block1/shortcut_conv/kernel"), np.full((1, 1, 2, 2), 9.0))
    assert (
        dict(report.entries)["params/stage0_block1/shortcut_conv/kernel"]
        == "kept initialisation (teacher has no stage0_block1/shortcut_conv)"
    )
    np.testing.assert_array_equal(leaf(out, "params/stage0_block1/conv1/kernel"), np.ones((3, 3, 2, 2)))


def test_pure_frozendict_and_student_dtype():
    teacher = tiny_tree((1, 1), width=2, value=3.0)
    student = tiny_tree((1, 1), width=3, dtype=jnp.bfloat16, value=0.0)
    before_t, before_s = copy.deepcopy(teacher), copy.deepcopy(student)
    out, _ = tp.transplant(flax.core.freeze(teacher), flax.core.freeze(student))
    assert type(out) is dict and type(out["params"]["stage0_block0"]) is dict
    assert jax.tree.structure(out) == jax.tree.structure(student)
    conv = out["params"]["stage1_block0"]["conv1"]["kernel"]
    assert conv.dtype == jnp.bfloat16 and conv.shape == (3, 3, 3, 3)
    np.testing.assert_array_equal(np.asarray(conv, np.float32), np.full((3, 3, 3, 3), 3.0))
    for a, b in zip(jax.tree.leaves((before_t, before_s)), jax.tree.leaves((teacher, student))):
        assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------------ the key test: real models


def random_variables(model, seed):
    """Random params/batch_stats for ``model`` (shapes from eval_shape: no slow init compile).

    Every leaf is uniform in [0.5, 1.5) times a random sign for params, so BN variances stay > 0
    and BN scales/biases are far from their constant initial values.
    """
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(IMAGE), train=False))
    rng = np.random.default_rng(seed)

    def fill(collection, s):
        x = rng.uniform(0.5, 1.5, s.shape)
        if collection == "params":
            x = x * rng.choice([-1.0, 1.0], s.shape) / np.sqrt(max(1, int(np.prod(s.shape[:-1]))))
        return jnp.asarray(x, s.dtype)

    return {k: jax.tree.map(lambda s, k=k: fill(k, s), shapes[k]) for k in ("params", "batch_stats")}


@pytest.fixture(scope="module")
def ann_teacher():
    """ANN ResNet18 width 8 with random params and non-trivial BN statistics."""
    model = build("resnet18", width=8)
    return model, random_variables(model, seed=0)


def test_ann_to_ann_same_size_reproduces_teacher_logits(ann_teacher):
    model, teacher = ann_teacher
    student = random_variables(model, seed=1)
    x = jax.random.normal(jax.random.key(2), IMAGE)
    logits_t = model.apply(teacher, x, train=False)
    assert not np.allclose(model.apply(student, x, train=False), logits_t)
    out, report = tp.transplant(teacher, student, include_shortcut=True, include_head=True)
    np.testing.assert_array_equal(model.apply(out, x, train=False), logits_t)
    assert report.kept == 0 and report.transplanted == len(jax.tree.leaves(student))


@pytest.mark.parametrize("neuron", ["lif", "plif"])
def test_ann_into_spiking_twin(ann_teacher, neuron):
    _, teacher = ann_teacher
    snn = build("resnet18", width=8, neuron=neuron, time_steps=2)
    student = random_variables(snn, seed=1)
    out, report = tp.transplant(teacher, student, include_shortcut=True, include_head=True)
    assert jax.tree.structure(out) == jax.tree.structure(student)
    np.testing.assert_array_equal(
        out["params"]["stage2_block1"]["conv1"]["kernel"], teacher["params"]["stage2_block1"]["conv1"]["kernel"]
    )
    if neuron == "lif":  # one spiking forward pass (a few seconds on a CPU) is enough
        logits = snn.apply(out, jax.random.normal(jax.random.key(2), IMAGE), train=False)
        assert logits.shape == (IMAGE[0], NUM_CLASSES) and bool(jnp.all(jnp.isfinite(logits)))
    # Report: every student leaf exactly once; only PLIF decays are kept, bitwise unchanged.
    paths = [p for p, _ in report.entries]
    assert sorted(paths) == sorted(flat_paths(student)) and len(set(paths)) == len(paths)
    n_decays = sum(p.endswith("decay_logit") for p in paths)
    assert n_decays == (0 if neuron == "lif" else 1 + 2 * 8)  # stem_act + (act1, act_out) x 8 blocks
    assert report.kept == n_decays and report.transplanted == len(paths) - n_decays
    for path, source in report.entries:
        assert (source == "kept initialisation (neuron parameter)") == path.endswith("decay_logit")
        if path.endswith("decay_logit"):
            assert leaf(out, path).tobytes() == leaf(student, path).tobytes()


def test_report_text_and_dict():
    teacher, student = numbered_variables(width=2), numbered_variables(width=2, neuron="plif", time_steps=2)
    _, report = tp.transplant(teacher, student)
    n_leaves = len(jax.tree.leaves(student))
    assert report.transplanted + report.kept == n_leaves == len(report.entries)
    # kept: 17 PLIF decays + 3 shortcut convs x (kernel, scale, bias, mean, var) + head (kernel, bias)
    assert report.kept == 17 + 15 + 2
    d = report.to_dict()
    assert d["transplanted"] == report.transplanted and d["kept"] == report.kept and len(d["entries"]) == n_leaves
    text = report.to_text().splitlines()
    assert text[0] == f"transplant: {report.transplanted} leaves from the teacher, {report.kept} kept as initialised"
    assert len(text) == n_leaves + 1
    assert len({line.index("<-") for line in text[1:]}) == 1  # aligned column
    assert "  params/stem_conv/kernel" in report.to_text()

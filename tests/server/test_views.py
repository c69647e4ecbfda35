"""The worker's views keep nothing that grows with use."""

from __future__ import annotations

from server import views
from server.views import Inspector
from tests.server.tiny import tiny_dataset


def test_the_test_image_pngs_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(views, "MAX_CACHED_PNGS", 4)
    inspector = Inspector(tiny_dataset(test=40))
    for position in range(40):                  # a presenter pinning image after image
        assert inspector._png(position) == inspector._png(position)
        assert len(inspector._pngs) <= 4


SALIENCY_NET = [{"type": "input", "out_sx": 6, "out_sy": 5, "out_depth": 3},
                {"type": "conv", "sx": 3, "filters": 4, "pad": 1, "activation": "relu"},
                {"type": "pool", "sx": 2, "stride": 2, "rounding": "floor"},
                {"type": "fc", "num_neurons": 6, "activation": "tanh"},
                {"type": "fc", "num_neurons": 3},
                {"type": "softmax", "num_classes": 3}]


def test_the_saliency_gradient_matches_central_differences_of_the_score():
    import numpy as np

    from engine.layers.base import Context
    from engine.net import Net
    from engine.spec.net_spec import parse_spec
    from tests.gradcheck import numerical_grad
    spec = parse_spec(SALIENCY_NET)
    net = Net(spec, rng=np.random.default_rng(4), dtype=np.float64)
    x = np.random.default_rng(5).standard_normal((1,) + spec.input_shape)
    ctx = Context(training=False)
    for k in range(3):
        _, caches, _ = net.forward(x, ctx)
        grads = net.new_grads()
        dx, output_grads = views.score_gradient(net, caches, k, grads, ctx)

        def score():
            return net.forward(x, ctx)[2][-2].reshape(-1)[k]  # the pre-softmax score

        numeric = numerical_grad(score, x)
        assert np.abs(dx - numeric).max() <= 1e-7 * np.abs(numeric).max(), k
        # The gradient at the scores is the one-hot itself; the loss layer has none.
        assert output_grads[-1] is None
        assert output_grads[-2].reshape(-1).tolist() == [float(j == k) for j in range(3)]


def test_classify_draws_its_saliency_map_from_that_gradient():
    import numpy as np

    from engine.net import Net
    from engine.spec.net_spec import parse_spec
    from engine.train.trainer import Trainer
    from server.visuals import saliency_b64
    from tests.server.tiny import TINY_SPEC
    dataset = tiny_dataset()
    trainer = Trainer(Net(parse_spec(TINY_SPEC), rng=np.random.default_rng(0)), dataset,
                      {"batch_size": 4})
    inspector = Inspector(dataset)
    image = dataset.test.take(np.array([3]))[0]
    result = inspector.classify(trainer, image)
    x = inspector.inputs(trainer, image[None])
    ctx = inspector._context_for(trainer.net)
    _, caches, _ = trainer.net.forward(x, ctx)
    best = int(np.argmax([result["probs"][c] for c in dataset.class_names]))
    dx, _ = views.score_gradient(trainer.net, caches, best, trainer.net.new_grads(), ctx)
    assert result["saliency"] == saliency_b64(dx[0])

"""airbench94's recipe in plain PyTorch (engine/bench/speedrun_torch.py): its whitening layer
and a short run end to end (the full run is a benchmark: README.md, "cifar_speedrun")."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the PyTorch recipe needs it")

from engine.bench.speedrun_torch import build_net, train  # noqa: E402  (needs torch)


@pytest.fixture(autouse=True)
def one_thread():
    # torch's spinning threads crawl when the suite's background boundscheck run holds a core
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def images(rng, n):
    # correlated channels and neighbouring pixels, as photographs have
    base = rng.standard_normal((n, 1, 32, 32)).astype(np.float32)
    smooth = base + np.roll(base, 1, axis=2) + np.roll(base, 1, axis=3)
    colour = smooth * np.array([1.0, 0.8, 0.5], np.float32).reshape(1, 3, 1, 1)
    return torch.tensor(colour + 0.3 * rng.standard_normal((n, 3, 32, 32)).astype(np.float32))


def test_the_first_conv_whitens_the_training_images_2x2_patches(rng):
    x = images(rng, 400)
    net = build_net(x, whiten_images=400)
    with torch.no_grad():
        out = net[0](x)[:, :12] - net[0].bias[:12].view(1, -1, 1, 1)
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    covariance = (flat.T @ flat / len(flat)).numpy()
    # identity, but for the 5e-4 that damps each direction: l / (l + 5e-4)
    np.testing.assert_allclose(covariance, np.eye(12), atol=0.02)
    assert not net[0].weight.requires_grad


def test_a_short_run_trains_and_reports_each_epoch(rng):
    train_x, test_x = images(rng, 192), images(rng, 64)
    train_y = torch.tensor(rng.integers(0, 10, 192))
    test_y = torch.tensor(rng.integers(0, 10, 64))
    lines = []
    net, history, single, tta = train(train_x, train_y, test_x, test_y, batch=64, epochs=4,
                                      log=lines.append, widths=(16, 32, 32))
    assert len(history) == 4 and lines[3].startswith("epoch 4: step 12")
    assert not net[0].bias.requires_grad         # epoch 4 ran with the whitening bias frozen
    assert all(0 <= a <= 1 for a in history + [single, tta])
    assert torch.isfinite(net[-1].weight).all()

"""airbench94's recipe in plain PyTorch, on our data: what `cifar_speedrun` should reach.

airbench94 (Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024) is the recipe
the `cifar_speedrun` preset follows with our engine. This is the same recipe written directly
in PyTorch (float32, on the CPU), so that a run of the preset can be compared with the recipe
itself on the same images, at airbench94's own batch of 1024 or at ours:

    python -m engine.bench.speedrun_torch --batch 1024 --epochs 9.9 --threads 2

It needs the `reference` extra (torch). The pieces, as airbench94 has them: a 2x2 conv of 24
filters fixed to the whitening of the training images' 2x2 patches (bias trained for the first
3 epochs), GELU; three groups of conv 3x3 (dirac init), 2x2 max pool, batch norm without
scale, GELU, conv, batch norm, GELU at widths 64, 256, 256; a 3x3 max pool, an fc without
bias, scores x 1/9; label smoothing 0.2, the loss summed over the batch; nesterov SGD,
momentum 0.85, lr 11.5 and weight decay 0.0153 per 1024 images (batch norm biases at 64x the
rate); a triangular schedule (0.2 -> 1 at 23% of the steps -> 0.07); lookahead every 5,120
images (alpha 0.95^5 x (step/total)^3); flips alternating by epoch and 2-pixel reflect
translation; evaluation with flip and 1-pixel translation test-time augmentation.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _torch():
    import torch  # noqa: PLC0415  (lazy: torch is an optional dependency)
    return torch


def tensors(split, mean=None, std=None):
    """A split's images as float NCHW in [0, 1], normalised by mean and std (the training
    split's own when not given); returns (images, labels, mean, std)."""
    torch = _torch()
    x = torch.tensor(np.asarray(split.images)).permute(0, 3, 1, 2).float().div(255)
    if mean is None:
        mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
    return (x - mean) / std, torch.tensor(np.asarray(split.labels)).long(), mean, std


def build_net(train_x, widths=(64, 256, 256), whiten_images=5000):
    """airbench94's net, its first conv whitening train_x's 2x2 patches."""
    torch = _torch()
    nn = torch.nn

    class BatchNorm(nn.BatchNorm2d):
        def __init__(self, features):      # airbench94's momentum 0.6 is torch's 0.4
            super().__init__(features, eps=1e-12, momentum=0.4)
            self.weight.requires_grad = False

    def conv(cin, cout):
        layer = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
        nn.init.dirac_(layer.weight.data[:cin])
        return layer

    def group(cin, cout):
        return nn.Sequential(conv(cin, cout), nn.MaxPool2d(2), BatchNorm(cout), nn.GELU(),
                             conv(cout, cout), BatchNorm(cout), nn.GELU())

    whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
    net = nn.Sequential(whiten, nn.GELU(), group(24, widths[0]), group(widths[0], widths[1]),
                        group(widths[1], widths[2]), nn.MaxPool2d(3), nn.Flatten(),
                        nn.Linear(widths[2], 10, bias=False))
    patches = train_x[:whiten_images].unfold(2, 2, 1).unfold(3, 2, 1)
    flat = patches.transpose(1, 3).reshape(-1, 12)
    values, vectors = torch.linalg.eigh(flat.T @ flat / len(flat), UPLO="U")
    values, vectors = values.flip(0).view(-1, 1, 1, 1), vectors.T.reshape(12, 3, 2, 2).flip(0)
    scaled = vectors / torch.sqrt(values + 5e-4)
    whiten.weight.data[:] = torch.cat((scaled, -scaled))
    whiten.weight.requires_grad = False
    whiten.bias.data.zero_()
    return net


def scores(net, x):
    return net(x) / 9


def accuracy(net, x, y, tta=False, batch=500):
    """Test accuracy, with flip and translate TTA (airbench94's level 2) when tta."""
    torch = _torch()
    F = torch.nn.functional
    net.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            out = scores(net, xb)
            if tta:
                def mirror(z):
                    return 0.5 * (scores(net, z) + scores(net, z.flip(-1)))
                p = F.pad(xb, (1, 1, 1, 1), mode="reflect")
                shifted = mirror(p[:, :, :-2, :-2]) + mirror(p[:, :, 2:, 2:])
                out = 0.5 * mirror(xb) + 0.25 * shifted
            hits += int((out.argmax(1) == y[i:i + batch]).sum())
    net.train()
    return hits / len(x)


def train(train_x, train_y, test_x, test_y, *, batch=1024, epochs=9.9, seed=0, log=print,
          widths=(64, 256, 256)):
    """Trains airbench94's net (widths: its three groups') by its recipe; returns (net,
    [accuracy after each epoch], final single-pass accuracy, final TTA accuracy)."""
    torch = _torch()
    F = torch.nn.functional
    torch.manual_seed(seed)
    net = build_net(train_x, widths)
    momentum = 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr, wd = 11.5 / kilostep, 0.0153 * batch / kilostep
    norm_biases = [p for n, p in net.named_parameters() if p.requires_grad and p.ndim == 1
                   and n != "0.bias"]
    others = [p for p in net.parameters() if p.requires_grad
              and all(p is not q for q in norm_biases)]
    # torch.optim.SGD's nesterov step, written out: torch.optim's first use imports
    # torch._dynamo (seconds). Weight decay wd / lr: the rate times it is wd at the peak.
    groups = [(norm_biases, 64 * lr, wd / (64 * lr)), (others, lr, wd / lr)]
    buffers = {id(p): torch.zeros_like(p) for p in norm_biases + others}

    def sgd_step(scale):
        with torch.no_grad():
            for params, rate, decay in groups:
                for p in params:
                    if p.grad is None:          # the whitening bias after its epochs
                        continue
                    d = p.grad + decay * p
                    buf = buffers[id(p)].mul_(momentum).add_(d)
                    p.sub_(rate * scale * (d + momentum * buf))

    steps_per_epoch = len(train_x) // batch
    total = int(epochs * steps_per_epoch)
    schedule = np.interp(np.arange(total + 1), [0, int(0.23 * total), total], [0.2, 1.0, 0.07])
    every = max(1, 5120 // batch)
    alpha = 0.95 ** 5 * (np.arange(total + 1) / total) ** 3
    slow = {k: v.clone() for k, v in net.state_dict().items()}

    def pull_back(decay):
        for k, v in net.state_dict().items():
            if v.dtype == torch.float:
                slow[k].lerp_(v, 1 - decay)
                v.copy_(slow[k])

    padded = F.pad(train_x, (2, 2, 2, 2), mode="reflect")
    flipped_first = torch.rand(len(train_x)) < 0.5
    rows = torch.arange(32)
    step, started, history = 0, time.time(), []
    for epoch in range(int(np.ceil(epochs))):
        net[0].bias.requires_grad = epoch < 3
        order = torch.randperm(len(train_x))
        dy, dx = torch.randint(0, 5, (len(train_x),)), torch.randint(0, 5, (len(train_x),))
        for b in range(steps_per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            xb = padded[idx[:, None, None, None], torch.arange(3)[None, :, None, None],
                        dy[idx][:, None, None, None] + rows[None, None, :, None],
                        dx[idx][:, None, None, None] + rows[None, None, None, :]]
            flip = flipped_first[idx] ^ bool(epoch % 2)
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            loss = F.cross_entropy(scores(net, xb), train_y[idx], label_smoothing=0.2,
                                   reduction="sum")
            net.zero_grad(set_to_none=True)
            loss.backward()
            sgd_step(schedule[step])
            step += 1
            if step % every == 0:
                pull_back(alpha[step])
            if step >= total:
                break
        history.append(accuracy(net, test_x, test_y))
        log(f"epoch {epoch + 1}: step {step}, test {100 * history[-1]:.2f}%, "
            f"{step * batch / (time.time() - started):.0f} images/s")
        if step >= total:
            break
    pull_back(1.0)
    return net, history, accuracy(net, test_x, test_y), accuracy(net, test_x, test_y, tta=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m engine.bench.speedrun_torch",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--epochs", type=float, default=9.9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="bundled", help="bundled, official or a folder")
    args = p.parse_args(argv)
    torch = _torch()
    torch.set_num_threads(args.threads)
    from engine.data.sources import open_source
    dataset = open_source(args.data, validation=0)
    train_x, train_y, mean, std = tensors(dataset.train)
    test_x, test_y, _, _ = tensors(dataset.test, mean, std)
    started = time.time()
    _, _, single, tta = train(train_x, train_y, test_x, test_y, batch=args.batch,
                              epochs=args.epochs)
    print(f"batch {args.batch}, {args.epochs} epochs: test {100 * single:.2f}%, with TTA "
          f"{100 * tta:.2f}%, {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Which of a net's parameters the optimizer leaves alone, and which learn at another rate.

- fixed: a whitening conv's weights (engine/train/whitening.py), from the start; its bias
  too once `bias_epochs` epochs are done (airbench94 trains that bias for its first 3 epochs);
  a batch norm's gamma when the spec says "scale": false (it stays 1).
- learning-rate multipliers: a batch norm's "lr_mul" (airbench94's 64x for its biases).
Names are the optimizer's, "<layer index>.<param>" (inside blocks "<index>.<chain>.<j>.<param>").
"""

from __future__ import annotations

from engine.train.whitening import whitened_layer, whitened_weights


def fixed_params(net, epoch: int) -> tuple[str, ...]:
    """Names the optimizer must not step once `epoch` epochs of training are done."""
    names = []
    for i, layer in enumerate(net.layers):
        names.extend(f"{i}.{name}" for name in sorted(getattr(layer, "fixed", ())))
    names.extend(whitened_weights(net))
    i = whitened_layer(net.spec)
    if i is not None:
        d = net.spec.layers[i]
        bias_epochs = d.get("bias_epochs")
        if d["bias"] and bias_epochs is not None and epoch >= bias_epochs:
            names.append(f"{i}.b")
    return tuple(names)


def lr_multipliers(net) -> dict[str, float]:
    """{name: multiplier} of every parameter whose learning rate is not the optimizer's own."""
    return {f"{i}.{name}": mul for i, layer in enumerate(net.layers)
            for name, mul in getattr(layer, "lr_mul", {}).items()}

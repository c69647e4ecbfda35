"""Nets as files: our snapshots, ConvNetJS's Net.toJSON(), ONNX models, the shipped pretrained
nets (pretrained_nets/), and what a file is from its first bytes.
May import: engine.values, engine.fsutil, engine.calculator, engine.spec, engine.layers,
engine.net, engine.optim, engine.data."""

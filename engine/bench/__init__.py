"""`convnet-demo bench`: our engine raced against PyTorch and a NumPy im2col net on the same
weights, per layer too, and what the machine is (nets/ holds the bench-only specs).
May import: engine.values, engine.threads, engine.calculator, engine.spec, engine.presets,
engine.kernels, engine.layers, engine.net, engine.optim, engine.data."""

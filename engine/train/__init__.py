"""Training: the loop the command line and the server share, test-set evaluation, metrics,
divergence rollback, the trainer's options and the whitening conv's init from the data.
May import: engine.values, engine.fsutil, engine.threads, engine.calculator, engine.spec,
engine.kernels, engine.layers, engine.net, engine.optim, engine.data, engine.formats."""

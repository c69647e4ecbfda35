"""Net specs: the JSON layer lists a user writes, read, checked and normalised into a NetSpec.
May import: engine.values, engine.calculator."""

"""One trainer for every network, split by concept. Imports run one way:

    handpose_lib.train / handpose_lib.predict (command lines), ablation, notebooks
      -> engine (the loop) -> inference, checkpoint, distributed, schedule, progress
      -> data (sources, datasets) -> config (dataclasses, the field rule) -> models, preprocess

`handpose_lib.profiles` sits beside `config`: it declares every named profile as config objects.
This package's `__init__` imports nothing, so importing `config` never pulls in the loop.
"""

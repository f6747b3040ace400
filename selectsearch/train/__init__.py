"""The training kernel shared by every trainer in selectsearch.

- :mod:`~selectsearch.train.arguments`: :class:`TrainingArguments`, the one vocabulary of
  training settings (and the old names still accepted when reading).
- :mod:`~selectsearch.train.schedule`: the learning-rate schedule and the seed helper.
- :mod:`~selectsearch.train.callbacks`: :class:`TrainState` and the callbacks (progress, JSON log).
- :mod:`~selectsearch.train.checkpoint`: atomic checkpoint folders, loaded as tensors only.
- :mod:`~selectsearch.train.optim`: the AdamW parameter groups of encoder + head models.
- :mod:`~selectsearch.train.loop`: :class:`Trainer` and the :class:`TrainingMethod` a model plugs in.

The methods keep only their model, batches and loss: the text classifiers
(:mod:`selectsearch.models.classifier_training`), ReAugKD (:mod:`selectsearch.distill.trainer`),
MICO (:mod:`selectsearch.mico.trainer`) and multi-task learning (:mod:`selectsearch.mtl.trainer`).
Importing this package loads no torch.
"""

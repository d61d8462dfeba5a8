"""textcls's offline trainer: a labelled file -> a versioned, evaluated SavedModel.

``training.train.train(cfg)`` runs the stages in order; each is a module of
``training/stages/`` with a typed input and output:

  stages/prepare.py    TrainConfig -> Prepared: files loaded, validated and split; the
                       architecture (``auto`` decided) and split-or-kfold chosen
  stages/fit.py        FitInput -> Fitted: the model built and fitted (split: early stopping
                       on the val rows); stages/trainee.py is how a model is fed;
                       members on frozen features fitted first (stages/linear_members.py)
  stages/kfold.py      Prepared -> HeldOut: one model per fold, out-of-fold predictions,
                       the refit's epoch count (instead of fit, on small files); a product
                       of experts' members each their own (stages/members.py)
  stages/refit.py      Prepared + Fitted -> Fitted: the published model trained on every row
                       that chose its epochs; with the held-out predictions: Trained
                       (stages/held_out.py)
  stages/calibrate.py  HeldOut -> Calibrated: temperature, fallback threshold (metadata's
                       ``fallback``)
  stages/evaluate.py   Trained + Calibrated -> Evaluation: metrics of every held-out set
  stages/package.py    everything -> Path: metadata.json, report/, the calibrated model,
                       published atomically as models/NAME/VERSION, with the drift
                       reference of stages/reference.py

Settings are declared once (training/settings.py; TrainConfig in config.py, ModelParams in
params.py): the CLI options, validation, metadata.json's ``params`` and retraining derive
from the declarations. Architectures register in training/architectures/. ``retrain`` (with
its gate, gate.py) trains a candidate like a serving version. artifact.py is the contract
with the service; tokenize.py the token rule both sides run;
reference.py the drift statistics and distances both sides use. docs/guides/training-stages.md
says how to add a setting or an architecture.
"""

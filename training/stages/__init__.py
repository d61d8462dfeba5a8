"""The trainer's stages, one module each, in the order ``training.train.train`` runs them:

prepare -> fit (split) or kfold -> refit -> calibrate -> evaluate -> package

Each takes the run's TrainConfig and the outputs of the stages before it, and returns one
typed object (Prepared, Fitted / HeldOut as Trained, Calibrated, Evaluation, the version's
Path). ``trainee`` is how the fit stage feeds a model; ``held_out`` the hand-over types.
"""

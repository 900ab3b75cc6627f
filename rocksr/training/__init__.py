"""Training of every model kind: one loop (:mod:`rocksr.training.trainer`) over a task per kind
(:mod:`~rocksr.training.cgan_task`, :mod:`~rocksr.training.regress_task`,
:mod:`~rocksr.training.ddpm_task`), with exact resume, DDP and the run's device settings."""

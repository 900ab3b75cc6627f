"""The diffusion model's maths: noise schedules and training targets (:mod:`.schedule`) and
sampling (:mod:`.sampling`)."""

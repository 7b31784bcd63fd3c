"""The social-commerce simulator: a latent world, its day-by-day events and their ground truth.

Modules: `config` (SimConfig, presets), `build` (build_world), `step` (step_day, the closed-loop
seam), `sharing` (share policies), `simulate` (simulate, write_simulation), `truth` (load_truth,
expected kept purchases, oracle picks). Nothing is imported here, so `recsys --help` stays fast.
"""

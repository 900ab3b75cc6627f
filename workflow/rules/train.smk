# Training. The resumable state (last.pt) lives in results/<run>/state/<kind>/, which is NOT a
# declared output: Snakemake deletes declared outputs before a job starts, so a job killed at
# its time limit and re-run resumes from there (timing.json beside it: the wall time so far).
# Only the final artefacts are outputs; the timings are in history_timing.csv, never in a
# checkpoint or history.csv (docs/outputs.md#timings-and-locations).


# One training rule per model kind of the registry (rocksr.models.registry): train_cgan,
# train_ddpm, ... Each rule's code hash covers the train stage and that kind's module only.
# Each kind has a second rule, leak_train_<kind>: the same training on the leak study's split
# (leak_study/<strategy>/, TRAINING_RUNS), with train_<kind>'s resources unless the config
# gives leak_train_<kind> its own (rocksr.config.resources.rule_resource).
for _kind in MODELS:
    for _prefix, (_run, _suffix) in TRAINING_RUNS.items():

        rule:
            name:
                f"{_prefix}train_{_kind}"
            input:
                **train_inputs(_kind, _run),
            output:
                best=f"{_run}/models/{_kind}/best.pt",
                history=f"{_run}/models/{_kind}/history.csv",
                timing=f"{_run}/models/{_kind}/history_timing.csv",
            log:
                f"{R}/logs/{_prefix}train_{_kind}{_suffix}.log",
            benchmark:
                f"{R}/benchmarks/{_prefix}train_{_kind}{_suffix}.tsv"
            wildcard_constraints:
                strategy="|".join(STRATEGIES),
            conda:
                "../../envs/rocksr.yaml"
            threads: res(f"{_prefix}train_{_kind}", "threads")
            resources:
                mem_mb=res(f"{_prefix}train_{_kind}", "mem_mb"),
                runtime=res(f"{_prefix}train_{_kind}", "runtime"),
                gpu=res(f"{_prefix}train_{_kind}", "gpu"),
                gpu_model=gpu_model(f"{_prefix}train_{_kind}"),
            params:
                kind=_kind,
                # the run folder's `{strategy}` (the leak run's) filled in: a function
                train=lambda wc, kind=_kind, run=_run: train_params(
                    kind, run.format(**dict(wc.items()))
                ),
                seed=config["seed"],
                state=f"{_run}/state/{_kind}",
                samples=f"{_run}/models/{_kind}/val_samples",
                code=kind_hash("train", _kind),
                # a param, not an expression in `shell:`: Snakemake evaluates the shell
                # expression when the job runs, when _kind and _prefix hold the loop's last
                # values; a param is bound here (the rule's name as a default argument)
                launcher=lambda wc, threads, rule=f"{_prefix}train_{_kind}": train_launcher(
                    rule, threads
                ),
            shell:
                "{params.launcher} train --kind {params.kind} --store {input.store:q} "
                "--splits {input.splits:q} --best {output.best:q} --history {output.history:q} "
                "--timing {output.timing:q} --samples-dir {params.samples:q} "
                "--state-dir {params.state:q} --params {params.train:q} --seed {params.seed} "
                "> {log:q} 2>&1"


rule loss_curve:
    input:
        history=f"{R}/models/{{kind}}/history.csv",
    output:
        report(
            f"{R}/models/{{kind}}/loss_curve.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        f"{R}/logs/loss_curve/{{kind}}.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        code=lambda wc: kind_hash("loss_curve", wc.kind),
    shell:
        "rocksr loss-curve --kind {wildcards.kind} --history {input.history:q} "
        "--out {output:q} > {log:q} 2>&1"

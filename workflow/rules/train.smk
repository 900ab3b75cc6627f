# Training. The resumable state (last.pt) lives in results/<run>/state/<kind>/, which is NOT a
# declared output: Snakemake deletes declared outputs before a job starts, so a job killed at
# its time limit and re-run resumes from there (timing.json beside it: the wall time so far).
# Only the final artefacts are outputs; the timings are in history_timing.csv, never in a
# checkpoint or history.csv (docs/outputs.md#timings-and-locations).


# One training rule per model kind of the registry (rocksr.models.registry): train_cgan,
# train_ddpm, ... Each rule's code hash covers the train stage and that kind's module only.
for _kind in MODELS:

    rule:
        name:
            f"train_{_kind}"
        input:
            **train_inputs(_kind),
        output:
            best=f"{R}/models/{_kind}/best.pt",
            history=f"{R}/models/{_kind}/history.csv",
            timing=f"{R}/models/{_kind}/history_timing.csv",
        log:
            f"{R}/logs/train_{_kind}.log",
        benchmark:
            f"{R}/benchmarks/train_{_kind}.tsv"
        conda:
            "../../envs/rocksr.yaml"
        threads: res(f"train_{_kind}", "threads")
        resources:
            mem_mb=res(f"train_{_kind}", "mem_mb"),
            runtime=res(f"train_{_kind}", "runtime"),
            gpu=res(f"train_{_kind}", "gpu"),
            gpu_model=gpu_model(f"train_{_kind}"),
        params:
            kind=_kind,
            train=train_params(_kind),
            seed=config["seed"],
            state=f"{R}/state/{_kind}",
            samples=f"{R}/models/{_kind}/val_samples",
            code=kind_hash("train", _kind),
        shell:
            train_launcher(f"train_{_kind}")
            + " train --kind {params.kind} --store {input.store:q} "
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

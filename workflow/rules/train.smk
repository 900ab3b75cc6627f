# Training. The resumable state (last.pt) lives in results/<run>/state/<kind>/, which is NOT a
# declared output: Snakemake deletes declared outputs before a job starts, so a job killed at
# its time limit and re-run resumes from there. Only the final artefacts are outputs.


rule train_cgan:
    input:
        store=rules.build_dataset.output.store,
        splits=rules.split.output.splits,
    output:
        best=f"{R}/models/cgan/best.pt",
        history=f"{R}/models/cgan/history.csv",
    log:
        f"{R}/logs/train_cgan.log",
    benchmark:
        f"{R}/benchmarks/train_cgan.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("train_cgan", "threads")
    resources:
        mem_mb=res("train_cgan", "mem_mb"),
        runtime=res("train_cgan", "runtime"),
        gpu=res("train_cgan", "gpu"),
        gpu_model=gpu_model("train_cgan"),
    params:
        train=train_params("cgan"),
        seed=config["seed"],
        state=f"{R}/state/cgan",
        samples=f"{R}/models/cgan/val_samples",
        code=stage_hash("train_cgan"),
    shell:
        "OMP_NUM_THREADS={threads} rocksr train --kind cgan --store {input.store:q} "
        "--splits {input.splits:q} --best {output.best:q} --history {output.history:q} "
        "--samples-dir {params.samples:q} "
        "--state-dir {params.state:q} --params {params.train:q} --seed {params.seed} "
        "> {log:q} 2>&1"


rule train_ddpm:
    input:
        store=rules.build_dataset.output.store,
        splits=rules.split.output.splits,
    output:
        best=f"{R}/models/ddpm/best.pt",
        history=f"{R}/models/ddpm/history.csv",
    log:
        f"{R}/logs/train_ddpm.log",
    benchmark:
        f"{R}/benchmarks/train_ddpm.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("train_ddpm", "threads")
    resources:
        mem_mb=res("train_ddpm", "mem_mb"),
        runtime=res("train_ddpm", "runtime"),
        gpu=res("train_ddpm", "gpu"),
        gpu_model=gpu_model("train_ddpm"),
    params:
        train=train_params("ddpm"),
        seed=config["seed"],
        state=f"{R}/state/ddpm",
        samples=f"{R}/models/ddpm/val_samples",
        code=stage_hash("train_ddpm"),
    shell:
        "OMP_NUM_THREADS={threads} rocksr train --kind ddpm --store {input.store:q} "
        "--splits {input.splits:q} --best {output.best:q} --history {output.history:q} "
        "--samples-dir {params.samples:q} "
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
        code=stage_hash("loss_curve"),
    shell:
        "rocksr loss-curve --kind {wildcards.kind} --history {input.history:q} "
        "--out {output:q} > {log:q} 2>&1"

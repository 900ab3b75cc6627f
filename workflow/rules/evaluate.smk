# The split table every evaluation rule reads: splits.csv with at most evaluate.test_views test
# views (all when null); training reads splits.csv, so changing the limit re-runs evaluation only.
rule test_views:
    input:
        splits=rules.split.output.splits,
    output:
        splits=f"{R}/splits/test_views.csv",
    log:
        f"{R}/logs/test_views.log",
    benchmark:
        f"{R}/benchmarks/test_views.tsv"
    conda:
        "../../envs/rocksr.yaml"
    params:
        limit=f"--limit {EVAL['test_views']}" if EVAL["test_views"] is not None else "",
        code=stage_hash("test_views"),
    shell:
        "rocksr test-views --splits {input.splits:q} {params.limit} --out {output.splits:q} "
        "> {log:q} 2>&1"


localrules:
    test_views,


rule predict:
    input:
        checkpoint=f"{R}/models/{{model}}/best.pt",
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        predict_store(f"{R}/predictions/{PREDICT_PART}.zarr"),
    log:
        f"{R}/logs/predict/{PREDICT_PART}.log",
    benchmark:
        f"{R}/benchmarks/predict/{PREDICT_PART}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
        shard=r"\d+",
    conda:
        "../../envs/rocksr.yaml"
    threads: res("predict", "threads")
    resources:
        mem_mb=res("predict", "mem_mb"),
        runtime=res("predict", "runtime"),
        gpu=res("predict", "gpu"),
        gpu_model=gpu_model("predict"),
    params:
        sampler=EVAL["sampler"],
        steps=as_json(EVAL["steps"]),
        batch=EVAL["batch_size"],
        seed=EVAL["seed"],
        n_samples=predict_n_samples,
        code=lambda wc: kind_hash("predict", wc.model),
    shell:
        "OMP_NUM_THREADS={threads} rocksr predict --checkpoint {input.checkpoint:q} "
        "--store {input.store:q} --splits {input.splits:q} --out {output:q} "
        "--sampler {params.sampler} --steps {params.steps:q} --batch-size {params.batch} "
        "--seed {params.seed} --n-samples {params.n_samples}"
        + PREDICT_SHARD_OPTION
        + " > {log:q} 2>&1"


if SHARDED:

    rule gather_predictions:
        input:
            shards=lambda wc: predict_shards(wc.model, f"{R}/predictions/{{part}}.zarr"),
            benchmarks=lambda wc: predict_shards(
                wc.model, f"{R}/benchmarks/predict/{{part}}.tsv"
            ),
        output:
            store=directory(f"{R}/predictions/{{model}}.zarr"),
            benchmark=f"{R}/benchmarks/predict/{{model}}.tsv",
        log:
            f"{R}/logs/gather_predictions/{{model}}.log",
        wildcard_constraints:
            model="|".join(MODELS),
        conda:
            "../../envs/rocksr.yaml"
        params:
            code=stage_hash("gather_predictions"),
        shell:
            "rocksr gather-predictions --shards {input.shards:q} --out {output.store:q} "
            "--benchmarks {input.benchmarks:q} --out-benchmark {output.benchmark:q} "
            "> {log:q} 2>&1"


# the leak study's predictions: the same rules on the leak run's model and split
use rule predict as leak_predict with:
    input:
        checkpoint=f"{LEAK_RUN}/models/{{model}}/best.pt",
        store=rules.build_dataset.output.store,
        splits=f"{LEAK_RUN}/splits/splits.csv",
    output:
        predict_store(f"{LEAK_RUN}/predictions/{PREDICT_PART}.zarr"),
    log:
        f"{R}/logs/leak_predict/{{strategy}}/{PREDICT_PART}.log",
    benchmark:
        f"{R}/benchmarks/leak_predict/{{strategy}}/{PREDICT_PART}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
        shard=r"\d+",
        strategy="|".join(STRATEGIES),
    threads: res("leak_predict", "threads")
    resources:
        mem_mb=res("leak_predict", "mem_mb"),
        runtime=res("leak_predict", "runtime"),
        gpu=res("leak_predict", "gpu"),
        gpu_model=gpu_model("leak_predict"),


if SHARDED:

    use rule gather_predictions as leak_gather_predictions with:
        input:
            shards=lambda wc: predict_shards(
                wc.model, f"{leak_run(wc.strategy)}/predictions/{{part}}.zarr"
            ),
            benchmarks=lambda wc: predict_shards(
                wc.model, f"{R}/benchmarks/leak_predict/{wc.strategy}/{{part}}.tsv"
            ),
        output:
            store=directory(f"{LEAK_RUN}/predictions/{{model}}.zarr"),
            benchmark=f"{R}/benchmarks/leak_predict/{{strategy}}/{{model}}.tsv",
        log:
            f"{R}/logs/leak_gather_predictions/{{strategy}}/{{model}}.log",
        wildcard_constraints:
            model="|".join(MODELS),
            strategy="|".join(STRATEGIES),


rule baseline:
    input:
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        directory(f"{R}/predictions/{{baseline}}.zarr"),
    log:
        f"{R}/logs/baseline/{{baseline}}.log",
    benchmark:
        f"{R}/benchmarks/baseline/{{baseline}}.tsv"
    wildcard_constraints:
        baseline="|".join(BASELINES),
    conda:
        "../../envs/rocksr.yaml"
    threads: res("baseline", "threads")
    resources:
        mem_mb=res("baseline", "mem_mb"),
        runtime=res("baseline", "runtime"),
    params:
        lut=f"{R}/predictions/histmatch_lut.json",
        code=stage_hash("baseline"),
    shell:
        "rocksr baseline --name {wildcards.baseline} --store {input.store:q} "
        "--splits {input.splits:q} --out {output:q} --lut {params.lut:q} > {log:q} 2>&1"


rule budget:
    input:
        checkpoints=expand(f"{R}/models/{{kind}}/best.pt", kind=MODELS),
        histories=expand(f"{R}/models/{{kind}}/history.csv", kind=MODELS),
        timings=expand(f"{R}/models/{{kind}}/history_timing.csv", kind=MODELS),
        train=expand(f"{R}/benchmarks/train_{{kind}}.tsv", kind=MODELS),
        predict=expand(f"{R}/benchmarks/predict/{{kind}}.tsv", kind=MODELS),
        predictions=expand(f"{R}/predictions/{{kind}}.zarr", kind=MODELS),
    output:
        csv=report(
            f"{R}/evaluation/budget.csv",
            caption="../report/budget.rst",
            category="Results",
        ),
        md=f"{R}/evaluation/budget.md",
    log:
        f"{R}/logs/budget.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        args=lambda wc, input: " ".join(
            f"--{flag} " + " ".join(f"{k}={p}" for k, p in zip(MODELS, paths))
            for flag, paths in (
                ("checkpoints", input.checkpoints),
                ("histories", input.histories),
                ("timings", input.timings),
                ("train-benchmarks", input.train),
                ("predict-benchmarks", input.predict),
                ("predictions", input.predictions),
            )
        ),
        code=stage_hash("budget"),
    shell:
        "rocksr budget {params.args} --out-csv {output.csv:q} --out-md {output.md:q} "
        "> {log:q} 2>&1"


rule evaluate:
    input:
        predictions=list(prediction_stores().values()),
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
        manifest=rules.build_dataset.output.manifest,
        budget=rules.budget.output.csv,
    output:
        per_tile=f"{R}/evaluation/per_tile_metrics.csv",
        table=report(
            f"{R}/evaluation/table1.csv",
            caption="../report/table1.rst",
            category="Results",
        ),
        markdown=f"{R}/evaluation/table1.md",
    log:
        f"{R}/logs/evaluate.log",
    benchmark:
        f"{R}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    params:
        preds=prediction_args,
        porosity=as_json(EVAL["porosity_threshold"]),
        code=stage_hash("evaluate"),
    shell:
        "rocksr evaluate --predictions {params.preds} --store {input.store:q} "
        "--splits {input.splits:q} --manifest {input.manifest:q} "
        "--porosity-threshold {params.porosity:q} --out-per-tile {output.per_tile:q} "
        "--out-table {output.table:q} --out-markdown {output.markdown:q} "
        "--budget {input.budget:q} > {log:q} 2>&1"


rule perception_figure:
    input:
        table=rules.evaluate.output.table,
    output:
        report(
            f"{R}/figures/perception_distortion.png",
            caption="../report/perception_distortion.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/perception_figure.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        code=stage_hash("perception_figure"),
    shell:
        "rocksr perception-figure --table {input.table:q} --out {output:q} > {log:q} 2>&1"


rule figures:
    input:
        predictions=list(prediction_stores().values()),
        per_tile=rules.evaluate.output.per_tile,
        histories=expand(f"{R}/models/{{kind}}/history.csv", kind=MODELS),
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        figure2=report(
            f"{R}/figures/figure2.png",
            caption="../report/figure2.rst",
            category="Figures",
        ),
        figure3=report(
            f"{R}/figures/figure3.png",
            caption="../report/figure3.rst",
            category="Figures",
        ),
        curves=report(
            f"{R}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        f"{R}/logs/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    conda:
        "../../envs/rocksr.yaml"
    params:
        preds=prediction_args,
        histories=" ".join(f"{k}={R}/models/{k}/history.csv" for k in MODELS),
        models=" ".join(MODELS),
        seed=EVAL["figure_seed"],
        code=stage_hash("figures"),
    shell:
        "rocksr figures --predictions {params.preds} --models {params.models} "
        "--histories {params.histories} --per-tile {input.per_tile:q} "
        "--store {input.store:q} --splits {input.splits:q} --seed {params.seed} "
        "--out-figure2 {output.figure2:q} --out-figure3 {output.figure3:q} "
        "--out-curves {output.curves:q} > {log:q} 2>&1"


# only a target when evaluate.n_samples > 1 (see evaluate_targets in targets.smk)
rule uncertainty_figure:
    input:
        predictions=f"{R}/predictions/ddpm.zarr",
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        report(
            f"{R}/figures/uncertainty.png",
            caption="../report/uncertainty.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/uncertainty_figure.log",
    benchmark:
        f"{R}/benchmarks/uncertainty_figure.tsv"
    conda:
        "../../envs/rocksr.yaml"
    params:
        seed=EVAL["figure_seed"],
        code=stage_hash("uncertainty_figure"),
    shell:
        "rocksr uncertainty-figure --predictions ddpm={input.predictions:q} "
        "--store {input.store:q} --splits {input.splits:q} --seed {params.seed} "
        "--n-tiles 3 --out {output:q} > {log:q} 2>&1"


localrules:
    uncertainty_figure,


rule sampler_study:
    input:
        checkpoint=f"{R}/models/ddpm/best.pt",
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        **(
            {"part": temp(SAMPLER_STUDY_PART_CSV)}
            if SHARDED
            else sampler_study_outputs()
        ),
    log:
        f"{R}/logs/sampler_study{SAMPLER_STUDY_PART}.log",
    benchmark:
        f"{R}/benchmarks/sampler_study{SAMPLER_STUDY_PART}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/rocksr.yaml"
    threads: res("sampler_study", "threads")
    resources:
        mem_mb=res("sampler_study", "mem_mb"),
        runtime=res("sampler_study", "runtime"),
        gpu=res("sampler_study", "gpu"),
        gpu_model=gpu_model("sampler_study"),
    params:
        configs=as_json(STUDY["configs"]),
        n_tiles=STUDY["n_tiles"],
        tolerance=STUDY["tolerance_db"],
        seed=EVAL["seed"],
        batch=EVAL["batch_size"],
        code=kind_hash("sampler_study", "ddpm"),
    shell:
        "OMP_NUM_THREADS={threads} rocksr sampler-study --checkpoint {input.checkpoint:q} "
        "--store {input.store:q} --splits {input.splits:q} --configs {params.configs:q} "
        "--n-tiles {params.n_tiles} --seed {params.seed} --batch-size {params.batch} "
        "--tolerance-db {params.tolerance}"
        + SAMPLER_STUDY_OUTPUT_OPTIONS
        + " > {log:q} 2>&1"


if SHARDED:

    rule gather_sampler_study:
        input:
            parts=sampler_study_parts(),
        output:
            **sampler_study_outputs(),
        log:
            f"{R}/logs/gather_sampler_study.log",
        conda:
            "../../envs/rocksr.yaml"
        params:
            tolerance=STUDY["tolerance_db"],
            code=stage_hash("gather_sampler_study"),
        shell:
            "rocksr gather-sampler-study --parts {input.parts:q} --tolerance-db "
            "{params.tolerance} --out-csv {output.csv:q} --out-timing {output.timing:q} "
            "--out-md {output.md:q} --out-png {output.png:q} > {log:q} 2>&1"


# the leak model's predictions alone (of both runs): a change to another model leaves it be
rule leak_study:
    input:
        **leak_study_inputs(),
        store=rules.build_dataset.output.store,
        manifest=rules.build_dataset.output.manifest,
    output:
        csv=f"{R}/evaluation/leak_study.csv",
        md=report(
            f"{R}/evaluation/leak_study.md",
            caption="../report/leak_study.rst",
            category="Results",
        ),
        png=report(
            f"{R}/figures/leak_study.png",
            caption="../report/leak_study.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/leak_study.log",
    benchmark:
        f"{R}/benchmarks/leak_study.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("leak_study", "threads")
    resources:
        mem_mb=res("leak_study", "mem_mb"),
        runtime=res("leak_study", "runtime"),
    params:
        kind=LEAK["model"],
        strategy=config["split"]["strategy"],
        leaky_strategy=LEAKY_STRATEGY,
        code=stage_hash("leak_study"),
    shell:
        "rocksr leak-study --kind {params.kind} --store {input.store:q} "
        "--manifest {input.manifest:q} --splits {input.splits:q} "
        "--own-predictions {input.own:q} --strategy {params.strategy} --counts {input.counts:q} "
        "--leaky-splits {input.leaky_splits:q} --leaky-counts {input.leaky_counts:q} "
        "--leaky-predictions {input.leaky:q} --leaky-strategy {params.leaky_strategy} "
        "--out-csv {output.csv:q} --out-md {output.md:q} --out-png {output.png:q} "
        "> {log:q} 2>&1"


rule rock_figure:
    input:
        predictions=list(prediction_stores().values()),
        store=rules.build_dataset.output.store,
        splits=rules.test_views.output.splits,
    output:
        report(
            f"{R}/figures/rock_statistics.png",
            caption="../report/rock_statistics.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/rock_figure.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        preds=prediction_args,
        porosity=as_json(EVAL["porosity_threshold"]),
        code=stage_hash("rock_figure"),
    shell:
        "rocksr rock-figure --predictions {params.preds} --store {input.store:q} "
        "--splits {input.splits:q} --porosity-threshold {params.porosity:q} "
        "--out {output:q} > {log:q} 2>&1"

rule build_dataset:
    input:
        mct=normalized("mct.tif"),
        sem=normalized("sem.tif"),
        masks=normalized("mask.png"),
        reports=normalized("normalize.json"),
    output:
        store=directory(f"{R}/dataset/tiles.zarr"),
        manifest=f"{R}/dataset/manifest.csv",
        dropped=f"{R}/dataset/dropped_tiles.csv",
    log:
        f"{R}/logs/build_dataset.log",
    benchmark:
        f"{R}/benchmarks/build_dataset.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("build_dataset", "threads")
    resources:
        mem_mb=res("build_dataset", "mem_mb"),
        runtime=res("build_dataset", "runtime"),
    params:
        samples=as_json(list(SAMPLES)),
        tiling=as_json(config["tiling"]),
        store=as_json(config["store"]),
        normalization=as_json(config["normalize"]),
        code=stage_hash("build_dataset"),
    shell:
        "rocksr build-dataset --samples {params.samples:q} --mct {input.mct:q} "
        "--sem {input.sem:q} --masks {input.masks:q} --tiling {params.tiling:q} "
        "--store-params {params.store:q} "
        "--normalization {params.normalization:q} --reports {input.reports:q} "
        "--workers {threads} --out-store {output.store:q} "
        "--out-manifest {output.manifest:q} --out-dropped {output.dropped:q} > {log:q} 2>&1"


rule split:
    input:
        manifest=rules.build_dataset.output.manifest,
        dropped=rules.build_dataset.output.dropped,
    output:
        splits=f"{R}/splits/splits.csv",
        counts=report(
            f"{R}/splits/split_counts.csv",
            caption="../report/split_counts.rst",
            category="Dataset",
        ),
    log:
        f"{R}/logs/split.log",
    benchmark:
        f"{R}/benchmarks/split.tsv"
    conda:
        "../../envs/rocksr.yaml"
    params:
        split=as_json(config["split"]),
        code=stage_hash("split"),
    shell:
        "rocksr split --manifest {input.manifest:q} --dropped {input.dropped:q} "
        "--params {params.split:q} "
        "--out-splits {output.splits:q} --out-counts {output.counts:q} > {log:q} 2>&1"


# the leak study's split: the same rule with another strategy (the `{strategy}` wildcard)
use rule split as leak_split with:
    output:
        splits=f"{LEAK_RUN}/splits/splits.csv",
        counts=f"{LEAK_RUN}/splits/split_counts.csv",
    log:
        f"{R}/logs/leak_split/{{strategy}}.log",
    benchmark:
        f"{R}/benchmarks/leak_split/{{strategy}}.tsv"
    wildcard_constraints:
        strategy="|".join(STRATEGIES),
    params:
        # only what this strategy reads: a change to another's keys re-runs nothing here
        split=lambda wc: as_json(strategy_params(config["split"], wc.strategy)),
        code=stage_hash("split"),


rule figure1:
    input:
        store=rules.build_dataset.output.store,
        manifest=rules.build_dataset.output.manifest,
    output:
        report(
            f"{R}/figures/figure1.png",
            caption="../report/figure1.rst",
            category="Figures",
        ),
    log:
        f"{R}/logs/figure1.log",
    benchmark:
        f"{R}/benchmarks/figure1.tsv"
    conda:
        "../../envs/rocksr.yaml"
    params:
        code=stage_hash("figure1"),
    shell:
        "rocksr figure1 --store {input.store:q} --manifest {input.manifest:q} "
        "--out {output:q} > {log:q} 2>&1"


rule split_map:
    input:
        manifest=rules.split.input.manifest,
        dropped=rules.split.input.dropped,
        splits=rules.split.output.splits,
        masks=rules.build_dataset.input.masks,
    output:
        report(
            f"{R}/splits/split_map.png",
            caption="../report/split_map.rst",
            category="Dataset",
        ),
    log:
        f"{R}/logs/split_map.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        code=stage_hash("split_map"),
    shell:
        "rocksr split-map --manifest {input.manifest:q} --splits {input.splits:q} "
        "--dropped {input.dropped:q} --masks {input.masks:q} --out {output:q} > {log:q} 2>&1"

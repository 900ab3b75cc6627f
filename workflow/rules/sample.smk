rule synthesize:
    output:
        mct=f"{R}/raw/{{sample}}/mct.tif",
        sem=f"{R}/raw/{{sample}}/sem.tif",
    log:
        f"{R}/logs/synthesize/{{sample}}.log",
    benchmark:
        f"{R}/benchmarks/synthesize/{{sample}}.tsv"
    wildcard_constraints:
        sample="|".join(SYNTHETIC) if SYNTHETIC else "(?!)",
    conda:
        "../../envs/rocksr.yaml"
    threads: res("synthesize", "threads")
    resources:
        mem_mb=res("synthesize", "mem_mb"),
        runtime=res("synthesize", "runtime"),
    params:
        spec=lambda wc: as_json(SAMPLES[wc.sample]["synthetic"]),
        code=stage_hash("synthesize"),
    shell:
        "rocksr synthesize --spec {params.spec:q} --out-mct {output.mct:q} "
        "--out-sem {output.sem:q} > {log:q} 2>&1"


rule normalize:
    input:
        mct=lambda wc: raw_image(wc, "mct"),
        sem=lambda wc: raw_image(wc, "sem"),
        mask=mask_image_input,
    output:
        mct=f"{R}/normalized/{{sample}}/mct.tif",
        sem=f"{R}/normalized/{{sample}}/sem.tif",
        mask=f"{R}/normalized/{{sample}}/mask.png",
        report=f"{R}/normalized/{{sample}}/normalize.json",
    log:
        f"{R}/logs/normalize/{{sample}}.log",
    benchmark:
        f"{R}/benchmarks/normalize/{{sample}}.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("normalize", "threads")
    resources:
        mem_mb=res("normalize", "mem_mb"),
        runtime=res("normalize", "runtime"),
    params:
        norm=as_json(config["normalize"]),
        pair=lambda wc: PairSettings.of_sample(SAMPLES[wc.sample]).to_json(),
        min_size=footprint_size(config["tiling"]["size"]),
        code=stage_hash("normalize"),
    shell:
        "rocksr normalize --sample {wildcards.sample} --mct {input.mct:q} --sem {input.sem:q} "
        "--params {params.norm:q} --pair-settings {params.pair:q} --min-size {params.min_size} "
        "--out-mct {output.mct:q} "
        "--out-sem {output.sem:q} --out-mask {output.mask:q} "
        "--report {output.report:q} > {log:q} 2>&1"


rule histograms:
    input:
        mct=rules.normalize.input.mct,
        sem=rules.normalize.input.sem,
        normalized_mct=rules.normalize.output.mct,
        normalized_sem=rules.normalize.output.sem,
        mask=rules.normalize.input.mask,
    output:
        f"{R}/normalized/{{sample}}/histograms.png",
    log:
        f"{R}/logs/histograms/{{sample}}.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        pair=rules.normalize.params.pair,
        code=stage_hash("histograms"),
    shell:
        "rocksr histograms --sample {wildcards.sample} --mct {input.mct:q} --sem {input.sem:q} "
        "--pair-settings {params.pair:q} --normalized-mct {input.normalized_mct:q} "
        "--normalized-sem {input.normalized_sem:q} --out {output:q} > {log:q} 2>&1"

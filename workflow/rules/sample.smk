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
        pages=lambda wc: as_json(
            {
                "mct_page": SAMPLES[wc.sample].get("mct_page"),
                "sem_page": SAMPLES[wc.sample].get("sem_page"),
                "mct_series": SAMPLES[wc.sample].get("mct_series"),
                "sem_series": SAMPLES[wc.sample].get("sem_series"),
                "mct_scale": SAMPLES[wc.sample].get("mct_scale"),
                "crop": SAMPLES[wc.sample].get("crop"),
                "mask": SAMPLES[wc.sample].get("mask"),
            }
        ),
        min_size=footprint_size(config["tiling"]["size"]),
        code=stage_hash("normalize"),
    shell:
        "rocksr normalize --sample {wildcards.sample} --mct {input.mct:q} --sem {input.sem:q} "
        "--params {params.norm:q} --pages {params.pages:q} --min-size {params.min_size} "
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
        pages=rules.normalize.params.pages,
        code=stage_hash("histograms"),
    shell:
        "rocksr histograms --sample {wildcards.sample} --mct {input.mct:q} --sem {input.sem:q} "
        "--pages {params.pages:q} --normalized-mct {input.normalized_mct:q} "
        "--normalized-sem {input.normalized_sem:q} --out {output:q} > {log:q} 2>&1"

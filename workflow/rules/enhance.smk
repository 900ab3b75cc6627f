# Whole-slice inference: both trained models on each sample's whole normalized micro-CT (registered
# onto the SEM grid and normalized exactly as for training), a seam study on a crop with ground
# truth, and a full-resolution figure. On `enhance.enabled: false` none of this is built.


rule enhance:
    input:
        checkpoint=f"{R}/models/{{model}}/best.pt",
        mct=rules.normalize.output.mct,
    output:
        image=f"{R}/enhanced/{{sample}}/{{model}}.tif",
        report=f"{R}/enhanced/{{sample}}/{{model}}.json",
    log:
        f"{R}/logs/enhance/{{sample}}_{{model}}.log",
    benchmark:
        f"{R}/benchmarks/enhance/{{sample}}_{{model}}.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("enhance", "threads")
    resources:
        mem_mb=res("enhance", "mem_mb"),
        runtime=res("enhance", "runtime"),
        gpu=res("enhance", "gpu"),
        gpu_model=gpu_model("enhance"),
    params:
        options=enhance_options,
        code=lambda wc: kind_hash("enhance", wc.model),
    shell:
        "OMP_NUM_THREADS={threads} rocksr enhance --checkpoint {input.checkpoint:q} "
        "--input {input.mct:q} --output {output.image:q} --report {output.report:q} "
        "{params.options} --no-progress > {log:q} 2>&1"


# a stack of `enhance.stacks`: the `enhance` rule on its raw pages (a part of them per shard)
use rule enhance as stack_enhance with:
    input:
        checkpoint=f"{R}/models/{{model}}/best.pt",
        mct=lambda wc: STACKS[wc.stack]["path"],
    output:
        image=stack_part("tif"),
        report=stack_part("json"),
    log:
        f"{R}/logs/stack_enhance/{STACK_PART}.log",
    benchmark:
        f"{R}/benchmarks/stack_enhance/{STACK_PART}.tsv"
    wildcard_constraints:
        stack=STACK_NAMES,
        model="|".join(MODELS),
        shard=r"\d+",
    params:
        options=stack_enhance_options,
        code=lambda wc: kind_hash("enhance", wc.model),


if SHARDED:

    rule gather_enhance:
        input:
            parts=lambda wc: stack_parts(wc, "tif"),
            reports=lambda wc: stack_parts(wc, "json"),
        output:
            image=STACK_OUTPUT.replace("{ext}", "tif"),
            report=STACK_OUTPUT.replace("{ext}", "json"),
        log:
            f"{R}/logs/gather_enhance/{{stack}}/{{model}}.log",
        wildcard_constraints:
            stack=STACK_NAMES,
            model="|".join(MODELS),
        conda:
            "../../envs/rocksr.yaml"
        params:
            code=stage_hash("gather_enhance"),
        shell:
            "rocksr gather-enhance --parts {input.parts:q} --part-reports {input.reports:q} "
            "--output {output.image:q} --report {output.report:q} > {log:q} 2>&1"


rule seam_study:
    input:
        checkpoints=expand(f"{R}/models/{{model}}/best.pt", model=MODELS),
        mct=f"{R}/normalized/{FIRST_SAMPLE}/mct.tif",
        sem=f"{R}/normalized/{FIRST_SAMPLE}/sem.tif",
        # the whole slices of the `enhance` rule: the banding at the tile period
        enhanced=expand(f"{R}/enhanced/{FIRST_SAMPLE}/{{model}}.tif", model=MODELS),
    output:
        csv=f"{R}/evaluation/seam_study.csv",
        timing=f"{R}/evaluation/seam_study_timing.csv",
        banding=f"{R}/evaluation/banding.csv",
        md=report(
            f"{R}/evaluation/seam_study.md",
            caption="../report/seam_study.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/seam_study.log",
    benchmark:
        f"{R}/benchmarks/seam_study.tsv"
    conda:
        "../../envs/rocksr.yaml"
    threads: res("seam_study", "threads")
    resources:
        mem_mb=res("seam_study", "mem_mb"),
        runtime=res("seam_study", "runtime"),
        gpu=res("seam_study", "gpu"),
        gpu_model=gpu_model("seam_study"),
    params:
        checkpoints=lambda wc, input: " ".join(
            f"{m}={p}" for m, p in zip(MODELS, input.checkpoints)
        ),
        enhanced=lambda wc, input: " ".join(
            f"{m}={p}" for m, p in zip(MODELS, input.enhanced)
        ),
        crop=ENHANCE["seam_crop"],
        sampler=EVAL["sampler"],
        steps=f"--steps {EVAL['steps']}" if EVAL["steps"] else "",
        seed=ENHANCE["seed"],
        batch=ENHANCE["batch_size"],
        window=f"--window {ENHANCE['window']}" if ENHANCE["window"] else "",
        code=kind_hash("seam_study", *MODELS),
    shell:
        "OMP_NUM_THREADS={threads} rocksr seam-study --checkpoints {params.checkpoints} "
        "--mct {input.mct:q} --sem {input.sem:q} --crop {params.crop} "
        "--sampler {params.sampler} {params.steps} --seed {params.seed} "
        "--batch-size {params.batch} {params.window} "
        "--enhanced {params.enhanced} --out-banding {output.banding:q} "
        "--out-csv {output.csv:q} --out-timing {output.timing:q} --out-md {output.md:q} "
        "> {log:q} 2>&1"


rule enhance_figure:
    input:
        mct=f"{R}/normalized/{{sample}}/mct.tif",
        sem=f"{R}/normalized/{{sample}}/sem.tif",
        enhanced=expand(f"{R}/enhanced/{{{{sample}}}}/{{model}}.tif", model=MODELS),
    output:
        report(
            f"{R}/figures/enhance_{{sample}}.png",
            caption="../report/enhance.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/enhance_figure/{{sample}}.log",
    conda:
        "../../envs/rocksr.yaml"
    params:
        enhanced=lambda wc, input: " ".join(
            f"{m}={p}" for m, p in zip(MODELS, input.enhanced)
        ),
        crop=ENHANCE["figure_crop"],
        code=stage_hash("enhance_figure"),
    shell:
        "rocksr enhance-figure --mct {input.mct:q} --sem {input.sem:q} "
        "--enhanced {params.enhanced} --crop {params.crop} --out {output:q} > {log:q} 2>&1"

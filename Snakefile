# rocksr: micro-CT -> SEM super-resolution, from a registered image pair to Table 1.
# Run `snakemake --cores 2` (default config.yaml) or `--configfile configs/paper.yaml`.


configfile: "config.yaml"


include: "workflow/rules/config.smk"
include: "workflow/rules/lifecycle.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/enhance.smk"


localrules:
    all,
    dataset,
    split,
    leak_split,
    figure1,
    figures,
    split_map,
    histograms,
    loss_curve,
    enhance_figure,
    rock_figure,
    budget,
    perception_figure,


rule all:
    default_target: True
    input:
        all_targets(),


rule dataset:
    input:
        dataset_targets(),


check_rule_paths()
warn_threads_above_cores()


onstart:
    write_resolved_config()


onsuccess:
    collect_warnings()


onerror:
    collect_warnings()
